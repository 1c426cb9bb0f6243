"""Two runs of the same study with the same seed on the CPU give identical metrics.json, apart from timing fields."""
import json, os, subprocess

from conftest import ROOT, tool
from dcat.study import TIMING_KEYS

def strip_timing(o):
    if isinstance(o, dict): return {k: strip_timing(v) for k, v in o.items() if k not in TIMING_KEYS}
    if isinstance(o, list): return [strip_timing(v) for v in o]
    return o

def test_identical_reruns(tmp_path):
    args = ["study", "synthetic", "--quiet", "--reports-dir", str(tmp_path / "reports"), "-p", "epochs=2",
            "-p", "mc_samples=5", "-p", "backbone_a=efficientnet_b0", "-p", "backbone_b=resnet18", "-p", "fusion_dim=32",
            "-p", "image_size=32", "-p", "batch_size=32"]
    env = {**os.environ, "DCAT_CHECKPOINTS_DIR": str(tmp_path / "ckpt")}
    runs = []
    for _ in range(2):
        r = subprocess.run([tool("dcat"), *args], cwd=ROOT, capture_output=True, text=True, timeout=900, env=env)
        assert r.returncode == 0, r.stderr[-4000:]
        runs.append(json.loads((tmp_path / "reports/synthetic/dcat/metrics.json").read_text()))
    a, b = map(strip_timing, runs)
    assert a["training"]["history"] and a["metrics"]["auc"] is not None
    assert runs[0]["provenance"]["utc"] is not None          # timing fields exist and were the only ones dropped
    assert a == b, "metrics.json differs between two identical runs"
