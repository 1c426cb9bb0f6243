"""The GPU path rehearsed on the CPU, so the first GPU run cannot die on a bug a CPU could have shown: the paper preset
(`[preset.paper]`: compile, all cores, data-loader workers) with bf16 autocast (`precision = bf16`, what `auto` gives on
CUDA) and channels-last batches (the fit loop's memory format on both devices), at a tiny size: `dcat train` trains,
evaluates with MC dropout and writes its metrics and predictor."""
import json, math, os, subprocess

from conftest import ROOT, tool

def test_paper_preset_bf16_compile_on_the_cpu(tmp_path):
    env = {**{k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")},   # the setting decides
           "DCAT_CHECKPOINTS_DIR": str(tmp_path / "ckpt")}
    r = subprocess.run([tool("dcat"), "train", "synthetic", "--preset", "paper", "--quiet", "-p", "precision=bf16",
                        "-p", "image_size=16", "-p", "epochs=1", "-p", "batch_size=32", "-p", "mc_samples=2",
                        "-p", "backbone_a=efficientnet_b0", "-p", "backbone_b=resnet18", "-p", "fusion_dim=16",
                        "-p", "num_workers=2", "-p", "device=cpu"],
                       cwd=ROOT, capture_output=True, text=True, timeout=1200, env=env)
    assert r.returncode == 0, r.stderr[-4000:]
    rec = json.loads(next((tmp_path / "ckpt").rglob("*.metrics.json")).read_text())
    p = rec["params"]
    assert (p["compile"], p["precision"], p["warmup_epochs"], p["patience"]) == (True, "bf16", 2, 8)   # the preset's
    assert math.isfinite(rec["metrics"]["auc"]) and math.isfinite(rec["training"]["history"][0]["train_loss"])
    assert rec["training"]["trained_by"][0]["torch_threads"] == os.cpu_count()   # torch_threads = 0: every core
    assert next((tmp_path / "ckpt").rglob("*.predictor.pt")).is_file()
