"""How often does a 95 % interval for ROC-AUC hold the true AUC? A simulation for choosing the reports' interval.

Test sets are drawn from two normal score distributions (positives N(d, 1), negatives N(0, 1)), whose AUC is known:
Phi(d / sqrt(2)). Each test set gets four intervals: the stratified percentile bootstrap, BCa on the same resamples
(scipy's jackknife acceleration), DeLong's normal interval and DeLong's interval on the logit scale. The table gives,
per test-set size, the share of test sets whose interval holds the truth and the mean width.

    python tools/interval_coverage.py [--sims 2000] [--resamples 1000] [--seed 0]

Sizes: PneumoniaMNIST's test split (390 pneumonia, 234 normal) at AUC 0.97, BreastMNIST's (42 benign, 114
malignant) at AUC 0.87 and 0.96. The Monte Carlo error of a coverage near 0.95 over 2,000 test sets is about 0.005.
"""
import argparse, types
import numpy as np
from scipy import stats as sps
from scipy.special import expit, logit

def auc_rank(pos: np.ndarray, neg: np.ndarray) -> np.ndarray:
    "Mann-Whitney AUC along the last axis (vectorised over resamples)."
    m, n = pos.shape[-1], neg.shape[-1]
    r = sps.rankdata(np.concatenate([pos, neg], -1), axis=-1)
    return (r[..., :m].sum(-1) - m * (m + 1) / 2) / (m * n)

def delong(pos: np.ndarray, neg: np.ndarray) -> tuple[float, float]:
    "AUC and DeLong's standard error (structural components, DeLong et al. 1988)."
    v10 = (pos[:, None] > neg[None]).mean(1) + 0.5 * (pos[:, None] == neg[None]).mean(1)
    v01 = (pos[:, None] > neg[None]).mean(0) + 0.5 * (pos[:, None] == neg[None]).mean(0)
    return float(v10.mean()), float(np.sqrt(v10.var(ddof=1) / len(pos) + v01.var(ddof=1) / len(neg)))

def intervals(pos, neg, rng, resamples):
    a, se = delong(pos, neg)
    q = sps.norm.ppf(0.975)
    boot = auc_rank(pos[rng.integers(0, len(pos), (resamples, len(pos)))], neg[rng.integers(0, len(neg), (resamples, len(neg)))])
    bca = sps.bootstrap((pos, neg), lambda p, n, axis=-1: auc_rank(p, n), n_resamples=0, method="BCa", vectorized=True,
                        bootstrap_result=types.SimpleNamespace(bootstrap_distribution=boot)).confidence_interval
    return {"percentile": tuple(np.quantile(boot, [0.025, 0.975])), "BCa": tuple(bca),
            "DeLong": (a - q * se, a + q * se), "DeLong, logit": tuple(expit(logit(a) + np.array([-q, q]) * se / (a * (1 - a))))}

def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sims", type=int, default=2000)
    ap.add_argument("--resamples", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    print(f"{args.sims} test sets, {args.resamples} resamples each, seed {args.seed}")
    print(f"{'positives':>9} {'negatives':>9} {'AUC':>6}  " + "  ".join(f"{k:>22}" for k in ("percentile", "BCa", "DeLong", "DeLong, logit")))
    for m, n, d in ((390, 234, 2.65), (42, 114, 1.6), (42, 114, 2.5)):
        truth = float(sps.norm.cdf(d / np.sqrt(2)))
        hits, widths = {}, {}
        for _ in range(args.sims):
            for k, (lo, hi) in intervals(rng.normal(d, 1, m), rng.normal(0, 1, n), rng, args.resamples).items():
                hits[k] = hits.get(k, 0) + (lo <= truth <= hi)
                widths.setdefault(k, []).append(hi - lo)
        print(f"{m:>9} {n:>9} {truth:6.3f}  " + "  ".join(f"{hits[k] / args.sims:>10.3f} (w {np.mean(widths[k]):.4f})" for k in hits), flush=True)

if __name__ == "__main__":
    main()
