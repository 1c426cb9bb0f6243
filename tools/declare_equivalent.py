"""Declare, with its evidence, that an older commit's training code trains the same weights as the code now.

A finished run is reused while the fingerprint of the code that trained it is the fingerprint of the code now
(`dcat.study.run_state`). A change that cannot move the weights (a report-only setting declared in `config.py`, an
`assert` turned into a `raise`, a method moved into a cell of its own) still changes that fingerprint and would make
every finished run stale. This tool records the older fingerprint as equivalent, in `dcat/equivalent_code.json`, keyed
by the current fingerprint, so the declaration lapses by itself at the next change of the training code. It refuses
without evidence: for each pair given, two runs of the same settings, one trained by the older code and one by the
code now, whose deterministic outputs (dropout off) are identical, bit for bit.

A change that does move some arms' weights (the `dca` arm's LayerNorm eps) but not others' is declared for the arms
whose code did not change: `--models dcat effnet_only`, with an evidence pair of each named model. Declarations that
the older code itself carried are carried on, through it (equivalence is transitive), within both scopes.

    python tools/declare_equivalent.py OLD_COMMIT --runs OLD_RUN NEW_RUN [--runs OLD_RUN NEW_RUN ...]
                                       [--models M ...] [--why "what changed"]
"""
import argparse, json, subprocess, sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from dcat.config import atomic_write_text
from dcat.study import EQUIVALENT_CODE_FILE, code_fingerprint_of, current_code_fingerprint, training_fingerprint

# what the weights alone decide: the deterministic pass (the MC outputs depend on `mc_samples`, a report setting)
ARRAYS = ("det_logits_test", "det_logits_cal", "p_test_det", "dice_deterministic", "iou_deterministic")

def identical_outputs(old: Path, new: Path) -> list[str]:
    "The arrays compared (those both runs' `predictions.npz` hold); raises when any differs or none is shared."
    a, b = np.load(old / "predictions.npz", allow_pickle=False), np.load(new / "predictions.npz", allow_pickle=False)
    shared = [k for k in ARRAYS if k in a.files and k in b.files]
    if not shared: raise SystemExit(f"{old} and {new}: no test outputs in common ({', '.join(ARRAYS)})")
    for k in shared:
        if a[k].shape != b[k].shape or not np.array_equal(a[k], b[k]):
            d = np.abs(a[k].astype(float) - b[k].astype(float)).max() if a[k].shape == b[k].shape else "shape"
            raise SystemExit(f"{k} differs between {old} and {new} (max |difference| {d}): not equivalent")
    return shared

def _scope(a: list | None, b: list | None) -> list | None:
    "Two scopes' intersection (None: every model)."
    if a is None or b is None: return b if a is None else a
    return sorted(set(a) & set(b))

def declared(table: dict,            # the current `equivalent_code.json`
             now: str,               # the code fingerprint now
             old: str,               # the older code fingerprint declared equivalent
             entry: dict,            # its commit, why and evidence (and `models`, its scope, when it has one)
            ) -> dict:               # the new table: only `now`'s declarations (others have lapsed)
    "The table with `old` declared equivalent to `now`, and what `old` was itself declared equivalent to carried through it."
    olds = dict(table.get(now, {}))
    for fp, e in table.get(old, {}).items():              # equivalent to `old`, hence to `now`, within both scopes
        if fp == now: continue
        scope = _scope(e.get("models"), entry.get("models"))
        if scope == []: continue
        olds[fp] = {**{k: v for k, v in e.items() if k != "models"}, "evidence": f"{e['evidence']}; then through {old[:12]}: {entry['evidence']}",
                    **({"models": scope} if scope is not None else {})}
    olds[old] = entry
    return {now: olds}

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("commit", help="the older commit whose training code is declared equivalent")
    ap.add_argument("--runs", nargs=2, metavar=("OLD_RUN", "NEW_RUN"), action="append", required=True,
                    help="report folders of one run's settings, trained by the older code and by the code now (repeatable)")
    ap.add_argument("--models", nargs="+", help="declare for these models only, each with an evidence pair (default: every model)")
    ap.add_argument("--why", default="", help="what changed between the two, in words")
    a = ap.parse_args(argv)
    show = lambda m: subprocess.run(["git", "show", f"{a.commit}:dcat/{m}.py"], cwd=ROOT, check=True,
                                    capture_output=True, text=True).stdout
    old_code, now = code_fingerprint_of(show), current_code_fingerprint()
    if old_code == now: raise SystemExit(f"{a.commit}'s training code is the code now: nothing to declare")
    evidence, models = [], set()
    for old_run, new_run in (map(Path, r) for r in a.runs):
        recs = [json.loads((r / "metrics.json").read_text()) for r in (old_run, new_run)]
        if recs[0]["run"]["hash"] != recs[1]["run"]["hash"]:
            raise SystemExit(f"{old_run} and {new_run} are runs of different settings ({recs[0]['run']['hash']} vs {recs[1]['run']['hash']})")
        trained = {t["fingerprint"] for t in recs[0]["training"]["trained_by"]}
        fp = lambda code: training_fingerprint(recs[0]["params"], code=code)["fingerprint"]
        if trained != {fp(old_code)}:
            raise SystemExit(f"{old_run} was not trained (only) by {a.commit}'s code here: fingerprints {sorted(trained)}, expected {fp(old_code)}")
        if {t["fingerprint"] for t in recs[1]["training"]["trained_by"]} != {fp(now)}:
            raise SystemExit(f"{new_run} was not trained by the code now")
        shared = identical_outputs(old_run, new_run)
        models.add(recs[0]["params"]["model"])
        evidence.append(f"{old_run.name} of {old_run.parent.parent.name}/{old_run.parent.name}: {', '.join(shared)} identical, trained by each code")
    if a.models and (missing := sorted(set(a.models) - models)):
        raise SystemExit(f"--models {' '.join(missing)}: no evidence pair of that model among --runs")
    path = ROOT / EQUIVALENT_CODE_FILE
    table = json.loads(path.read_text()) if path.is_file() else {}
    commit = subprocess.run(["git", "rev-parse", a.commit], cwd=ROOT, check=True, capture_output=True, text=True).stdout.strip()
    entry = {"commit": commit, "why": a.why, "evidence": "; ".join(evidence), **({"models": sorted(a.models)} if a.models else {})}
    atomic_write_text(path, json.dumps(declared(table, now, old_code, entry), indent=1, sort_keys=True) + "\n")
    scope = f" for {', '.join(sorted(a.models))}" if a.models else ""
    print(f"{path.relative_to(ROOT)}: {a.commit} ({old_code[:12]}) trains as the code now ({now[:12]}){scope}; {len(evidence)} pair(s) identical")

if __name__ == "__main__": main()
