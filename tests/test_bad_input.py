"""The bad-input catalogue: each bad input gives a clear error naming the file, key or value, and leaves no output.

Data sources are exercised through the library (fast); the command line's refusals through `dcat.cli.main` in this
process (each one would otherwise pay a Python start and a torch import), and once, with the data check before any
run, through the real `dcat` command in a subprocess.
"""
import os, subprocess

import numpy as np
import pytest
from PIL import Image

from conftest import ROOT, tool
from dcat.data import load_dataset, load_folder, load_npz

def good_arrays(n=12, size=28, rgb=False):
    rng = np.random.default_rng(0)
    shape = (n, size, size, 3) if rgb else (n, size, size)
    return {f"{s}_{k}": (rng.integers(0, 256, shape, dtype=np.uint8) if k == "images" else (np.arange(n) % 2).reshape(-1, 1))
            for s in ("train", "val", "test") for k in ("images", "labels")}

def npz_with(tmp_path, **change):
    arrays = good_arrays()
    for k, v in change.items():
        if v is None: arrays.pop(k)
        else: arrays[k] = v
    path = tmp_path / "bad.npz"; np.savez(path, **arrays)
    return path

def tree(tmp_path, n=6):
    rng = np.random.default_rng(0)
    for c in ("Normal", "Tuberculosis"):
        (tmp_path / "tb" / c).mkdir(parents=True, exist_ok=True)
        for i in range(n): Image.fromarray(rng.integers(0, 256, (20, 20), dtype=np.uint8)).save(tmp_path / "tb" / c / f"{i}.png")
    return tmp_path / "tb"

def nan_images():
    a = np.random.default_rng(0).random((12, 28, 28)).astype(np.float32); a[3, 4, 5] = np.nan; return a

def rgba_png(root):
    a = np.full((20, 20, 4), 128, np.uint8); a[:4, :, 3] = 0
    Image.fromarray(a, "RGBA").save(root / "Normal" / "four_channels.png"); return "four_channels.png"

def truncated_png(root):
    good = (root / "Normal" / "0.png").read_bytes()
    (root / "Normal" / "cut.png").write_bytes(good[: len(good) // 2]); return "cut.png"

def text_as_png(root):
    (root / "Tuberculosis" / "notes.png").write_text("not pixels"); return "notes.png"

def empty_class(root):
    (root / "Empty").mkdir(); return "Empty"

NPZ_CASES = {
    "npz missing file": (lambda t: t / "absent.npz", FileNotFoundError, "absent.npz"),
    "npz wrong keys": (lambda t: npz_with(t, val_labels=None), KeyError, "val_labels"),
    "npz mismatched lengths": (lambda t: npz_with(t, test_labels=np.zeros((5, 1), int)), ValueError, "test_labels"),
    "npz negative label": (lambda t: npz_with(t, train_labels=-np.ones((12, 1), int)), ValueError, "train_labels"),
    "npz NaN pixels": (lambda t: npz_with(t, train_images=nan_images()), ValueError, "NaN"),
    "npz 4-channel images": (lambda t: npz_with(t, val_images=np.zeros((12, 28, 28, 4), np.uint8)), ValueError, "val_images"),
    "npz not an npz": (lambda t: (t / "x.npz").write_text("hello") and t / "x.npz", ValueError, "x.npz"),
}

@pytest.mark.parametrize("case", NPZ_CASES)
def test_bad_npz(tmp_path, case):
    make, exc, needle = NPZ_CASES[case]
    with pytest.raises(exc) as e: load_npz(make(tmp_path), 28, classes=["normal", "pneumonia"])
    assert needle in str(e.value)

def test_npz_label_out_of_range(tmp_path):
    p = npz_with(tmp_path, train_labels=np.full((12, 1), 5))
    with pytest.raises(ValueError, match="train_labels"): load_npz(p, 28, classes=["normal", "pneumonia"])

FOLDER_CASES = {"4-channel PNG with transparency": rgba_png, "truncated PNG": truncated_png,
                "text file named .png": text_as_png, "empty class folder": empty_class}

@pytest.mark.parametrize("case", FOLDER_CASES)
def test_bad_folder(tmp_path, case):
    root = tree(tmp_path)
    needle = FOLDER_CASES[case](root)
    with pytest.raises((ValueError, OSError)) as e: load_folder(root, 16)
    assert needle in str(e.value)

def test_missing_data_dir(tmp_path):
    with pytest.raises(FileNotFoundError, match="DCAT_DATA_DIR"):
        load_dataset({"dataset": "pneumoniamnist", "source": "npz", "location": "pneumoniamnist.npz",
                      "data_dir": str(tmp_path / "nowhere"), "image_size": 28})

def dcat(*args, reports, env=None):
    e = {**os.environ, "DCAT_CHECKPOINTS_DIR": str(reports.parent / "ckpt"), **(env or {})}
    return subprocess.run([tool("dcat"), *args, "--reports-dir", str(reports)], cwd=ROOT, capture_output=True,
                          text=True, timeout=600, env=e)

CLI_CASES = {
    "unknown dataset": (["study", "no_such_dataset"], "no_such_dataset"),
    "unknown model": (["study", "-m", "no_such_model"], "no_such_model"),
    "wrong -p type": (["study", "-p", "epochs=two"], "'epochs'"),
    "float where int": (["study", "-p", "batch_size=1.5"], "'batch_size'"),
    "unknown -p key": (["study", "-p", "epoch=2"], "'epoch'"),
    "-p without =": (["study", "-p", "epochs"], "key=value"),
    "image size too small": (["study", "-p", "image_size=8"], "'image_size'"),
    "zero MC samples": (["study", "-p", "mc_samples=0"], "'mc_samples'"),
    "negative learning rate": (["study", "-p", "lr=-0.1"], "'lr'"),
    "unknown loss": (["study", "-p", "loss=focal"], "'loss'"),
    "unknown device": (["study", "-p", "device=tpu"], "tpu"),
}

@pytest.mark.parametrize("case", CLI_CASES)
def test_bad_cli_input(tmp_path, case, monkeypatch, capsys):
    from dcat.cli import main
    args, needle = CLI_CASES[case]
    monkeypatch.setenv("DCAT_CHECKPOINTS_DIR", str(tmp_path / "ckpt"))
    monkeypatch.chdir(ROOT)
    rc = main([*args, "--reports-dir", str(tmp_path / "reports")])
    err = capsys.readouterr().err
    assert rc == 1, err
    assert needle in err and err.startswith("dcat: error:") and err.count("\n") == 1, err     # one line, no traceback
    assert not any(p.is_file() for p in (tmp_path / "reports").rglob("*")), "partial output left behind"

def test_unwritable_reports_dir(tmp_path):
    (tmp_path / "afile").write_text("x")   # a file where a folder must be: fails even for root
    r = dcat("study", "synthetic", "-p", "epochs=1", reports=tmp_path / "afile" / "reports")
    assert r.returncode == 1 and "afile" in r.stderr and "Traceback" not in r.stderr, r.stderr

def test_missing_data_dir_found_before_any_run(tmp_path):
    "The data is checked once per dataset before any run starts: one line naming the missing folder; no report is left."
    r = dcat("study", "pneumoniamnist", "--quiet", "-p", "epochs=1", reports=tmp_path / "reports",
             env={"DCAT_DATA_DIR": str(tmp_path / "missing")})
    assert r.returncode == 1 and str(tmp_path / "missing") in r.stderr and "Traceback" not in r.stderr, r.stderr[-3000:]
    assert "cell" not in r.stderr, "found by the papermill run, after a kernel started: " + r.stderr[-3000:]
    assert not any(p.is_file() for p in (tmp_path / "reports").rglob("*")), "partial output left behind"
