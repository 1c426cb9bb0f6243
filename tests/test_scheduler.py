"""The run scheduler: one plan, three executors. The same two-run plan (one arm, two seeds of a tiny synthetic study)
in process, with `--jobs 2` (two processes) and as two jobs of a real one-node Slurm cluster (`tools/slurm_local.sh`,
through submitit) gives the same metrics, the same reports and the same aggregate, with no thread variable in the
environment: the `torch_threads` setting alone decides how many threads train, and every executor applies it in the
process that trains; `--status` lists the plan's runs; a failing run is named and the others finish."""
import json, os, subprocess

from conftest import ROOT, tool
from slurm_cluster import slurm_cluster  # noqa: F401 (a fixture)
from dcat.runs import TIMING_KEYS

ARGS = ["study", "synthetic", "--quiet", "--seeds", "2", "-p", "epochs=1", "-p", "mc_samples=2",
        "-p", "backbone_a=efficientnet_b0", "-p", "backbone_b=resnet18", "-p", "fusion_dim=16", "-p", "image_size=16",
        "-p", "batch_size=32", "-p", "ood_set=", "-p", "bootstrap_resamples=50", "-p", "embedding=none"]
DROP = set(TIMING_KEYS) | {"wall_s"}
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")

def strip(o):
    if isinstance(o, dict): return {k: strip(v) for k, v in o.items() if k not in DROP}
    if isinstance(o, list): return [strip(v) for v in o]
    return o

def dcat(tmp_path, reports, *extra, check=True, env=None):
    env = {**{k: v for k, v in os.environ.items() if k not in THREAD_VARS}, **(env or {})}   # the setting decides, not the environment
    env["DCAT_CHECKPOINTS_DIR"] = str(tmp_path / f"ckpt-{reports}")
    r = subprocess.run([tool("dcat"), *ARGS, "--reports-dir", str(tmp_path / reports), *extra], cwd=ROOT,
                       capture_output=True, text=True, timeout=900, env=env)
    if check: assert r.returncode == 0, r.stderr[-4000:]
    return r

def metrics(tmp_path, reports):
    arm = tmp_path / reports / "synthetic_16px" / "dcat"      # 16 px, not the section's 32: dcat.runs.arm_dir
    runs = [strip(json.loads((arm / f"seed-{s}" / "metrics.json").read_text())) for s in (0, 1)]
    return runs, strip(json.loads((arm / "aggregate.json").read_text()))

def test_three_executors_same_metrics(tmp_path, slurm_cluster):
    dcat(tmp_path, "seq")                                                  # in process, torch_threads = 1 (the default)
    r = dcat(tmp_path, "jobs", "--jobs", "2")                              # two processes, one thread each
    assert "[2/2 finished, 0 failed]" in r.stderr and "1 torch thread" in r.stderr, r.stderr
    r = dcat(tmp_path, "slurm", "--launcher", "slurm", "--slurm-partition", slurm_cluster.partition, "--slurm-cpus", "1",
             "--slurm-time", "20")
    assert "submitted 2 Slurm jobs" in r.stderr and "sacct" not in r.stderr and "accounting" not in r.stderr, r.stderr
    seq = metrics(tmp_path, "seq")
    for way in ("seq", "jobs", "slurm"):                                 # shown with pytest -s
        print(way, [repr(r["metrics"]["auc"]) for r in metrics(tmp_path, way)[0]])
    for other in ("jobs", "slurm"):
        assert metrics(tmp_path, other) == seq, f"{other} differs from the in-process run"
    for run in seq[0]:                                                   # trained and rendered with the setting's 1 thread
        assert [t["torch_threads"] for t in run["training"]["trained_by"]] == [1], run["training"]["trained_by"]
        assert run["provenance"]["torch_threads"] == 1 and run["params"]["torch_threads"] == 1
    for reports in ("seq", "jobs", "slurm"):
        assert (tmp_path / reports / "synthetic_16px/dcat/seed-0/report.html").is_file()
        assert (tmp_path / reports / "summary.md").is_file()
    st = dcat(tmp_path, "jobs", "--status").stdout.splitlines()       # finished ("stale" on an uncommitted tree)
    assert len(st) == 2 and all(line.startswith("finished") for line in st), st

def test_a_failing_run_is_named_and_the_others_finish(tmp_path):
    r = dcat(tmp_path, "missing", "--jobs", "2", "-p", "location=nothere.npz", "-p", "source=npz", check=False)
    assert r.returncode == 1 and "nothere.npz" in r.stderr and "seed-" not in r.stderr, r.stderr[-3000:]  # before any run
    (tmp_path / "broken.npz").write_bytes(b"not a zip file")          # a broken file: also refused before any run
    r = dcat(tmp_path, "bad", "--jobs", "2", "-p", f"location={tmp_path / 'broken.npz'}", "-p", "source=npz", check=False)
    assert r.returncode == 1 and "broken.npz" in r.stderr and "seed-" not in r.stderr, r.stderr[-3000:]
    r = dcat(tmp_path, "fails", "--jobs", "2", check=False, env={"DCAT_TEST_HOLD": "fail:training"})   # fails in its kernel
    assert r.returncode == 1 and r.stderr.count("dcat: error: synthetic/dcat/seed-") == 2, r.stderr[-3000:]
    r = dcat(tmp_path, "badlauncher", "--jobs", "0", check=False)
    assert r.returncode == 1 and "jobs=0" in r.stderr, r.stderr
