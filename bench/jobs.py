"""`dcat study --jobs 2` measured: the wall time of a reduced plan (two arms × two seeds = four short runs) run three
ways, each into its own temporary reports and checkpoints folders, one after the other in one invocation:

  (a) in process, one run after another, each with the per-run thread count of (b) (cores // 2: one on 2 cores);
  (b) `--jobs 2`: two runs at once in two processes, at that same thread count;
  (c) in process, each run given every core (the default plan).

It prints the command lines, the wall times, the ratios (b)/(a) (the target is at most 0.6, at identical metrics) and
(b)/(c), each run's test AUC three ways, whether (a) and (b) give identical `metrics` and `intervals` blocks in every
run's metrics.json (they must: same settings, same thread count), whether (c) differs (it may: another thread count
changes floating-point reductions), and the thread count each run's metrics.json records.

How the threads are set: with the `torch_threads` setting when this checkout's CLI knows it (it refuses
`-p torch_threads=-1`); the environment's OMP_NUM_THREADS / MKL_NUM_THREADS are set too for (a) and (b) and removed
for (c). An older CLI that does not know the setting gets the environment alone. The script says which it used.

    python bench/jobs.py                    # ~30-60 s per run on 2 cores: a few minutes in all
    python bench/jobs.py --smoke            # the smallest plan (two runs): checks the script, not the ratio
    python bench/jobs.py --dataset pneumoniamnist -p max_train=512 -p min_steps=0
"""
import argparse, json, math, os, shlex, shutil, subprocess, sys, tempfile, time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")

# a short run: tiny backbones, one epoch, few MC samples and resamples, no OOD set, no embedding figure
BASE = ["--quiet", "-p", "mc_samples=2", "-p", "bootstrap_resamples=50", "-p", "embedding=none", "-p", "ood_set=",
        "-p", "backbone_a=efficientnet_b0", "-p", "backbone_b=resnet18", "-p", "fusion_dim=16"]


def dcat_command() -> list[str]:
    "The `dcat` console script of this interpreter's environment (or the one on PATH)."
    exe = Path(sys.executable).parent / "dcat"
    if exe.exists(): return [str(exe)]
    found = shutil.which("dcat")
    if found: return [found]
    raise SystemExit("no `dcat` command found next to this Python or on PATH: install the project (pip install -e .)")


def run(cmd: list[str], env: dict, capture: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=capture, text=True)


def base_env(tmp: Path, way: str, threads: int | None) -> dict:
    "The environment of one way: its own checkpoints folder; the thread variables set to `threads`, or removed."
    env = {k: v for k, v in os.environ.items() if k not in THREAD_VARS and k != "DCAT_REPORTS_DIR"}
    env["DCAT_CHECKPOINTS_DIR"] = str(tmp / way / "checkpoints")
    if threads: env.update({k: str(threads) for k in THREAD_VARS})
    return env


def setting_known(dcat: list[str], study: list[str], tmp: Path) -> bool:
    "Whether this checkout's CLI validates `torch_threads` (refuses -1, accepts 1): then the setting decides the threads."
    env = base_env(tmp, "probe", None)
    probe = lambda *v: run([*dcat, "study", *study, *v, "--status", "--reports-dir", str(tmp / "probe" / "reports")], env)
    plain = probe()
    if plain.returncode != 0: raise SystemExit(f"the plan itself is refused: {(plain.stderr or plain.stdout).strip()[-1000:]}")
    good, bad = probe("-p", "torch_threads=1"), probe("-p", "torch_threads=-1")
    if good.returncode != 0:
        print(f"note: `-p torch_threads=1` refused by this checkout's CLI: {(good.stderr or good.stdout).strip()[-300:]}")
        return False
    return bad.returncode != 0


def leaves(o, prefix=""):
    "Flatten a JSON value into `{path: leaf}`."
    if isinstance(o, dict):
        out = {}
        for k, v in o.items(): out.update(leaves(v, f"{prefix}{k}."))
        return out
    if isinstance(o, list):
        out = {}
        for i, v in enumerate(o): out.update(leaves(v, f"{prefix}{i}."))
        return out
    return {prefix.rstrip("."): o}


def read_runs(reports: Path) -> dict[str, dict]:
    "Every run's metrics.json under `reports`, keyed by dataset/model/seed-k."
    return {str(p.parent.relative_to(reports)): json.loads(p.read_text()) for p in sorted(reports.glob("*/*/seed-*/metrics.json"))}


def compare(x: dict, y: dict, blocks=("metrics", "intervals")) -> tuple[bool, float, list[str]]:
    "Whether `blocks` of two metrics.json are identical; the largest absolute difference of a number; differing keys."
    lx = {f"{b}.{k}": v for b in blocks for k, v in leaves(x.get(b, {})).items()}
    ly = {f"{b}.{k}": v for b in blocks for k, v in leaves(y.get(b, {})).items()}
    diff = sorted(k for k in lx.keys() | ly.keys() if lx.get(k) != ly.get(k))
    num = lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
    d = max((abs(lx[k] - ly[k]) for k in diff if k in lx and k in ly and num(lx[k]) and num(ly[k])), default=0.0)
    nan_same = [k for k in diff if isinstance(lx.get(k), float) and isinstance(ly.get(k), float)
                and math.isnan(lx[k]) and math.isnan(ly[k])]
    diff = [k for k in diff if k not in nan_same]
    return not diff, d, diff


def threads_recorded(m: dict) -> str:
    "The thread counts a metrics.json records (any key named torch_threads / training_threads), as `path=value`."
    hits = [f"{k}={v}" for k, v in leaves(m).items() if k.split(".")[-1] in ("torch_threads", "training_threads")]
    return ", ".join(hits) or "none recorded"


def test_auc(m: dict):
    v = m.get("metrics", {}).get("auc")
    return f"{v:.6f}" if isinstance(v, (int, float)) else str(v)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default="synthetic", help="settings.ini dataset (default: synthetic, generated)")
    ap.add_argument("--image-size", type=int, default=32)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--models", nargs="+", default=["dcat", "concat"], help="arms of the plan (default: dcat concat)")
    ap.add_argument("--seeds", type=int, default=2, help="seeds per arm (default 2: four runs with the two arms)")
    ap.add_argument("--cores", type=int, default=os.cpu_count() or 1, help="cores the plan may use (default: all)")
    ap.add_argument("-p", "--param", action="append", default=[], metavar="KEY=VALUE", help="another setting, for all three")
    ap.add_argument("--smoke", action="store_true", help="the smallest plan: 16 px, 1 epoch, batch 32, one arm (two runs)")
    ap.add_argument("--ways", default="abc", help="which ways to run (default abc)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folders (their path is printed)")
    a = ap.parse_args(argv)
    if a.smoke: a.image_size, a.epochs, a.batch_size, a.models = 16, 1, 32, ["dcat"]
    jobs = 2
    per_run = max(1, a.cores // jobs)
    study = [a.dataset, "--seeds", str(a.seeds), *(x for m in a.models for x in ("-m", m)), *BASE, "-p", f"image_size={a.image_size}", "-p", f"epochs={a.epochs}",
             "-p", f"batch_size={a.batch_size}"]
    for p in a.param: study += ["-p", p]
    dcat = dcat_command()
    tmp = Path(tempfile.mkdtemp(prefix="dcat-bench-jobs-"))
    print(f"cores={a.cores} per-run threads at --jobs {jobs}: {per_run}; load average before: "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}; temporary folders: {tmp}")
    known = setting_known(dcat, study, tmp)
    print("threads set by: " + (f"the torch_threads setting (-p torch_threads=K) and {'/'.join(THREAD_VARS)}=K in the "
                                f"environment for (a) and (b); -p torch_threads={a.cores} and no thread variables for (c)"
                                if known else
                                f"the environment only ({'/'.join(THREAD_VARS)}=K for (a) and (b), removed for (c)): "
                                f"this checkout's CLI does not know the torch_threads setting"))
    setting = lambda k: ["-p", f"torch_threads={k}"] if known else []
    ways = {"a": (f"(a) in process, {per_run} thread{'s' * (per_run > 1)} per run", [*setting(per_run)], per_run),
            "b": (f"(b) --jobs {jobs}, {per_run} thread{'s' * (per_run > 1)} per run", [*setting(per_run), "--jobs", str(jobs)], per_run),
            "c": (f"(c) in process, {a.cores} threads per run (default plan)", [*setting(a.cores)], None)}
    wall, runs = {}, {}
    try:
        for w in a.ways:
            title, extra, threads = ways[w]
            env = base_env(tmp, w, threads)
            cmd = [*dcat, "study", *study, *extra, "--reports-dir", str(tmp / w / "reports")]
            envs = " ".join(f"{k}={env[k]}" for k in (*THREAD_VARS, "DCAT_CHECKPOINTS_DIR") if k in env)
            print(f"\n{title}\n  $ {envs} {shlex.join(cmd)}", flush=True)
            t0 = time.perf_counter()
            r = run(cmd, env)
            wall[w] = time.perf_counter() - t0
            if r.returncode != 0:
                print(r.stdout[-3000:], r.stderr[-3000:], sep="\n")
                raise SystemExit(f"{title}: dcat study exited {r.returncode}")
            runs[w] = read_runs(tmp / w / "reports")
            per = [m.get("provenance", {}).get("wall_s") for m in runs[w].values()]
            fit = [m.get("training", {}).get("train_wall_s") for m in runs[w].values()]
            share = (f"; training (the fit loop) {sum(fit):.1f} s of the runs' {sum(per):.1f} s"
                     if all(isinstance(v, (int, float)) for v in per + fit) and per else "")
            print(f"  wall {wall[w]:.1f} s for {len(runs[w])} runs{share}; load average after: "
                  f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    finally:
        if not a.keep: shutil.rmtree(tmp, ignore_errors=True)

    out = {"wall_s": wall}
    print("\nwall times")
    for w, t in wall.items(): print(f"  {ways[w][0]:>46}: {t:7.1f} s")
    if "a" in wall and "b" in wall:
        out["b_over_a"] = wall["b"] / wall["a"]
        print(f"jobs{jobs}_over_inprocess_same_threads (b)/(a): {out['b_over_a']:.3f}  (target <= 0.6)")
    if "c" in wall and "b" in wall:
        out["b_over_c"] = wall["b"] / wall["c"]
        print(f"jobs{jobs}_over_inprocess_all_cores (b)/(c): {out['b_over_c']:.3f}")
    if "a" in wall and "c" in wall: print(f"in process, {per_run} vs {a.cores} threads per run (a)/(c): {wall['a'] / wall['c']:.3f}")

    labels = sorted(set().union(*(r.keys() for r in runs.values())))
    print("\ntest AUC per run, and the threads each metrics.json records")
    print(f"  {'run':>28} " + " ".join(f"{'(' + w + ')':>10}" for w in runs))
    for lab in labels:
        print(f"  {lab:>28} " + " ".join(f"{test_auc(runs[w][lab]) if lab in runs[w] else 'missing':>10}" for w in runs))
    for w in runs:
        for lab in labels:
            if lab in runs[w]: print(f"  ({w}) {lab}: {threads_recorded(runs[w][lab])}")
    for x, y, must in (("a", "b", True), ("a", "c", False), ("b", "c", False)):
        if x not in runs or y not in runs: continue
        same, worst, keys = True, 0.0, []
        for lab in labels:
            if lab not in runs[x] or lab not in runs[y]: same = False; keys.append(f"{lab}: missing"); continue
            s, d, k = compare(runs[x][lab], runs[y][lab])
            same, worst, keys = same and s, max(worst, d), keys + [f"{lab}: {kk}" for kk in k]
        out[f"{x}_{y}_identical"] = same
        verdict = "identical" if same else f"DIFFER (largest |difference| {worst:.3g}; {len(keys)} values, e.g. {keys[:3]})"
        print(f"metrics + intervals, ({x}) vs ({y}): {verdict}" + (" — they must be identical" if must and not same else ""))
    return out


if __name__ == "__main__":
    main()
