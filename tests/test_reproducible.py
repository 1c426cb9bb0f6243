"""Seeds as a first-class setting, and reproducibility: `--seeds 2` gives one folder per seed (the first full, the
second lean), an aggregate with the seeds' ensemble; the same seed run again (elsewhere) gives an identical
metrics.json apart from timing fields, intervals included; and at a clean commit a rerun reuses every seed."""
import json, os, subprocess

from conftest import ROOT, tool
from dcat.runs import TIMING_KEYS

ARGS = ["study", "synthetic", "--quiet", "-p", "epochs=1", "-p", "mc_samples=3", "-p", "backbone_a=efficientnet_b0",
        "-p", "backbone_b=resnet18", "-p", "fusion_dim=32", "-p", "image_size=32", "-p", "batch_size=32", "-p", "ood_set=",
        "-p", "bootstrap_resamples=200", "-p", "embedding=pca"]

def strip_timing(o):
    if isinstance(o, dict): return {k: strip_timing(v) for k, v in o.items() if k not in TIMING_KEYS}
    if isinstance(o, list): return [strip_timing(v) for v in o]
    return o

def dcat(tmp_path, reports, *extra):
    env = {**os.environ, "DCAT_CHECKPOINTS_DIR": str(tmp_path / "ckpt")}
    r = subprocess.run([tool("dcat"), *ARGS, "--reports-dir", str(tmp_path / reports), *extra], cwd=ROOT,
                       capture_output=True, text=True, timeout=900, env=env)
    assert r.returncode == 0, r.stderr[-4000:]
    return r

def test_seeds_and_identical_reruns(tmp_path):
    dcat(tmp_path, "r1", "--seeds", "2")
    arm = tmp_path / "r1/synthetic/dcat"
    full, lean = arm / "seed-0", arm / "seed-1"
    assert (full / "report.html").is_file() and (full / "figures/roc_pr.png").is_file()
    assert not (lean / "figures").exists()                    # a later seed's page: its tables, a link to the figures
    lean_page = (lean / "report.html").read_text()
    assert 'href="../seed-0/report.html"' in lean_page and "<img" not in lean_page
    assert not (lean / "report.ipynb").exists() and (lean / "predictions.npz").is_file()   # the page is all it keeps
    page = (full / "report.html").read_text()                 # each figure stored once: the page links the PNG
    assert not (full / "report.ipynb").exists() and "data:image/png" not in page
    assert 'src="figures/roc_pr.png"' in page
    agg = json.loads((arm / "aggregate.json").read_text())
    assert agg["seeds"] == [0, 1] and agg["metrics"]["auc"]["n"] == 2 and agg["ensemble"]["members"] == [0, 1]
    assert agg["ensemble"]["uncertainty"]["entropy"]["mutual_information_mean"] >= 0
    one = json.loads((full / "metrics.json").read_text())
    assert one["intervals"]["auc"]["low"] <= one["metrics"]["auc"] <= one["intervals"]["auc"]["high"]

    dcat(tmp_path, "r2")                                 # seed 0 alone, into another folder: a second training
    two = json.loads((tmp_path / "r2/synthetic/dcat/seed-0/metrics.json").read_text())
    assert one["provenance"]["utc"] is not None          # timing fields exist and are the only ones dropped
    for rec in (one, two): rec["params"].pop("seeds")     # how many seeds the study had, not part of the run
    assert strip_timing(one) == strip_timing(two), "metrics.json differs between two identical runs"

    dirty = subprocess.run(["git", "status", "--porcelain", "--", ".", ":(exclude)reports"], cwd=ROOT,
                           capture_output=True, text=True).stdout.strip()
    if not dirty:                                        # a clean commit (CI): the same command reuses both seeds
        r = dcat(tmp_path, "r1", "--seeds", "2")
        assert r.stdout.count("reused (same settings and training code)") == 2, r.stdout
        again = json.loads((full / "metrics.json").read_text()); again["params"].pop("seeds")
        assert again == one
