"""The segmentation study end to end on generated images and masks (seconds), and its settings."""
import json, math

import nbformat
import numpy as np
import pytest

from conftest import ROOT

TEMPLATE = ROOT / "nbs" / "studies" / "seg_eval.ipynb"

def test_template_first_code_cell_is_tagged_parameters():
    nb = nbformat.read(TEMPLATE, as_version=4)
    first = next(c for c in nb.cells if c.cell_type == "code")
    assert "parameters" in first.metadata.get("tags", []), "papermill would silently ignore the parameters"

def test_kvasir_seg_settings_route_to_segmentation():
    from dcat.config import check_settings, is_segmentation, load_settings
    from dcat.study import find_template
    cfg = load_settings("kvasir_seg", path=ROOT / "settings.ini")
    assert is_segmentation(cfg) and cfg["source"] == "segfolder" and cfg["model"] == "unet"
    assert check_settings(cfg) == cfg and check_settings({**cfg, "model": "unet_dca"}).model == "unet_dca"
    assert find_template("seg_eval.ipynb") == TEMPLATE
    assert not is_segmentation(load_settings("pneumoniamnist", path=ROOT / "settings.ini"))

TINY_SETTINGS = """
[study]
data_dir = data
reports_dir = reports
checkpoints_dir = ckpt
model = unet
seed = 0
fusion_heads = 4
dropout = 0.1
weight_decay = 0.0
warmup_epochs = 0
patience = 0
mc_samples = 2
device = cpu
torch_threads = 1

[toyseg]
task = segmentation
source = segfolder
location = toyseg
image_size = 32
epochs = 2
batch_size = 4
lr = 3e-3
"""

@pytest.mark.parametrize("model", ["unet_dca"])  # the plain U-Net trains in nbs/08_train.ipynb; one arm keeps CI short
def test_tiny_segmentation_study(tmp_path, model):
    "`dcat study toyseg -m unet_dca` from a project folder, on 16 generated images at 32 px for 2 epochs."
    import os, subprocess
    from conftest import tool
    from dcat.segdata import write_seg_folder
    write_seg_folder(tmp_path / "data" / "toyseg", n=16, size=(40, 36), seed=1)
    (tmp_path / "settings.ini").write_text(TINY_SETTINGS)
    env = {k: v for k, v in os.environ.items() if not k.startswith("DCAT_")}
    (tmp_path / ".gitignore").write_text("data/\nckpt/\nreports/\n")   # a clean project checkout: finished seeds are reused
    git = lambda *a: subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *a], cwd=tmp_path, check=True,
                                    capture_output=True)
    git("init", "-q"); git("add", "-A"); git("commit", "-qm", "project")
    r = subprocess.run([tool("dcat"), "study", "toyseg", "-m", model, "--quiet"], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-4000:]
    out = tmp_path / "reports" / "toyseg" / model / "seed-0"
    rec = json.loads((out / "metrics.json").read_text())
    assert rec["task"] == "segmentation" and rec["model"] == model and rec["params"]["epochs"] == 2
    for k in ("dice", "iou"):
        ci = rec["metrics"][k]
        assert 0 <= ci["value"] <= 1 and (ci["low"] is None or ci["low"] <= ci["value"] <= ci["high"])
    assert rec["data"]["n_test"] == 2 and rec["data"]["split"]["n_train"] == 12 and len(rec["training"]["history"]) == 2
    assert rec["provenance"]["git_commit"] is not None or rec["provenance"]["packages"]["torch"]
    assert set(rec["uncertainty"]) >= {"pixel_auroc_entropy", "image"}
    assert list((tmp_path / "ckpt" / "toyseg" / model).glob("seed-0-*.pt")), "checkpoint keyed by seed and settings"
    figs = {p.name for p in (out / "figures").glob("*.png")}
    assert figs >= {"training.png", "overlays.png", "best_worst.png", "entropy_vs_dice.png"}, figs
    assert (out / "report.html").is_file() and "summary.md" in r.stdout
    html = (out / "report.html").read_text()
    assert "Results at a glance" in html and "test Dice, MC mean" in html and "has not finished" not in html
    if model == "unet_dca": assert "U-Net + DCA − U-Net" not in html  # no U-Net report in this project: nothing to compare, nothing said
    with np.load(out / "predictions.npz", allow_pickle=False) as z:
        assert set(z.files) >= {"names", "dice", "iou", "mean_entropy"} and len(z["dice"]) == 2
        assert all(z[k].ndim == 1 for k in z.files if not k.startswith("fig_")), "per-image arrays, and the figures' few images"
        assert len(z["fig_overlay_index"]) <= 7 and z["fig_overlay_mask"].dtype == np.uint8
        assert math.isclose(float(z["dice"].mean()), rec["metrics"]["dice"]["value"], rel_tol=1e-9)
    for noise in ("it/s", "Warning", "WARNING"): assert noise not in html, f"{noise!r} in the report"   # no warnings or progress bars
    assert not (out / "report.ipynb").exists()                         # the page is all a run keeps
    for f in ("metrics.json", "report.html"):                          # no path of the machine that ran it
        assert str(tmp_path) not in (out / f).read_text(), f
    assert rec["run"]["seed"] == 0 and len(rec["run"]["hash"]) == 10
    again = subprocess.run([tool("dcat"), "study", "toyseg", "-m", model], cwd=tmp_path, env=env,
                           capture_output=True, text=True, timeout=900)
    assert again.returncode == 0 and "reused" in again.stderr + again.stdout, again.stderr[-3000:]   # not retrained
    import shutil                                                      # the page again, from the run's files alone
    shutil.rmtree(tmp_path / "ckpt"); shutil.rmtree(tmp_path / "data"); shutil.rmtree(out / "figures"); (out / "report.html").unlink()
    redraw = subprocess.run([tool("dcat"), "render"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    assert redraw.returncode == 0 and "1 page(s) drawn again" in redraw.stdout, redraw.stderr[-3000:]
    assert {p.name for p in (out / "figures").glob("*.png")} == figs and "test Dice, MC mean" in (out / "report.html").read_text()
