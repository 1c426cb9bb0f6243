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

# ---- checked before work (issue 31): names, the data against its class list, folders, the scheduler, predict, summary

def small_npz(path, size=28, n=12, classes=2):
    rng = np.random.default_rng(0)
    np.savez(path, **{f"{s}_{k}": rng.integers(0, 256, (n, size, size), dtype=np.uint8) if k == "images"
                      else (np.arange(n) % classes).reshape(-1, 1) for s in ("train", "val", "test") for k in ("images", "labels")})
    return path

def settings_with(tmp_path, extra: str, encoding="utf-8"):
    p = tmp_path / "settings.ini"
    p.write_text((ROOT / "settings.ini").read_text() + "\n" + extra, encoding=encoding)
    return p

def run_main(args, tmp_path, monkeypatch, capsys, env=None):
    "The CLI in this process: (exit status, stderr); the reports and checkpoints folders are under `tmp_path`."
    from dcat.cli import main
    monkeypatch.setenv("DCAT_CHECKPOINTS_DIR", str(tmp_path / "ckpt"))
    for k, v in (env or {}).items(): monkeypatch.setenv(k, v)
    monkeypatch.chdir(ROOT)
    rc = main(args)
    return rc, capsys.readouterr().err

def one_line(rc, err, needle, tmp_path):
    assert rc == 1, err
    assert needle in err and err.startswith("dcat: error:") and err.count("\n") == 1, err     # one line, no traceback
    left = [p for d in ("reports", "ckpt", "elsewhere") for p in (tmp_path / d).rglob("*") if p.is_file()]
    assert not left, f"written before the refusal: {left}"

REFUSED = {   # args (the reports folder is added), the needle the one line must hold; tmp_path-dependent ones are lambdas
    "empty dataset name": (["study", ""], "dataset name is empty"),
    "empty -p dataset": (["study", "-p", "dataset="], "dataset name is empty"),
    "-p dataset climbing out": (["study", "-p", "dataset=../../elsewhere/x"], "'../../elsewhere/x' not found"),
    "dataset given twice": (["study", "synthetic", "-p", "dataset=pneumoniamnist"], "give one or the other"),
    "a newline inside a value": (["study", "-p", "dataset=a\nb"], "a\\nb"),          # shown escaped: still one line
    "class named twice": (["study", "synthetic", "-p", "classes=a,a"], "'a' is named twice"),
    "empty path setting": (["study", "synthetic", "-p", "data_dir="], "'data_dir'"),
    "heads not dividing the fusion width": (["study", "synthetic", "-p", "fusion_dim=10"], "'fusion_heads'"),
    "misspelt -p key": (["study", "synthetic", "-p", "fusion_dimm=8"], "'fusion_dimm'"),
    "more jobs than runs": (["study", "synthetic", "--jobs", "3", "-p", "epochs=1"], "--jobs 3"),
    "slurm time of zero": (["study", "synthetic", "--launcher", "slurm", "--slurm-time", "0"], "time_min"),
    "class list longer than the labels": (lambda t: ["study", str(small_npz(t / "two.npz")), "-p", "classes=a,b,c"],
                                          "class 'c' has no training images"),
    "images too small to corrupt": (lambda t: ["study", str(small_npz(t / "tiny.npz", size=4))], "too small for the corruption"),
    "positive class not among the classes": (["study", "synthetic", "-p", "positive_class=covid"], "'positive_class': 'covid'"),
    "missing weight file": (lambda t: ["study", "synthetic", "-p", f"pretrained_a={t / 'no.pth'}"], "no.pth"),
    "train: class list longer than the labels": (lambda t: ["train", str(small_npz(t / "two.npz")), "-p", "classes=a,b,c"],
                                                 "class 'c' has no training images"),
}

@pytest.mark.parametrize("case", REFUSED)
def test_refused_before_work(tmp_path, case, monkeypatch, capsys):
    args, needle = REFUSED[case]
    args = args(tmp_path) if callable(args) else args
    extra = [] if args[0] == "train" else ["--reports-dir", str(tmp_path / "reports")]
    rc, err = run_main([*args, *extra], tmp_path, monkeypatch, capsys)
    one_line(rc, err, needle, tmp_path)

@pytest.mark.parametrize("name", ["../../elsewhere/evil", "a/b", ".hidden"])
def test_section_names_are_names(tmp_path, name, monkeypatch, capsys):
    "A settings section named like a path never becomes a folder: refused by name, nothing written anywhere."
    ini = settings_with(tmp_path, f"[{name}]\nsource = synthetic\nclasses = a, b\nimage_size = 32\n")
    rc, err = run_main(["study", name, "--reports-dir", str(tmp_path / "reports")], tmp_path, monkeypatch, capsys,
                       env={"DCAT_SETTINGS": str(ini)})
    one_line(rc, err, "is not a name", tmp_path)

def test_settings_file_in_another_encoding(tmp_path, monkeypatch, capsys):
    ini = settings_with(tmp_path, "# é\n", encoding="utf-16")
    rc, err = run_main(["study", "--reports-dir", str(tmp_path / "reports")], tmp_path, monkeypatch, capsys,
                       env={"DCAT_SETTINGS": str(ini)})
    one_line(rc, err, f"{ini}: not UTF-8", tmp_path)

def test_slurm_missing(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PATH", str(tmp_path))            # no sbatch on it
    rc, err = run_main(["study", "synthetic", "--launcher", "slurm", "--reports-dir", str(tmp_path / "reports")],
                       tmp_path, monkeypatch, capsys)
    one_line(rc, err, "no Slurm here", tmp_path)

def test_slurm_unknown_partition(tmp_path, monkeypatch, capsys):
    import shutil
    if not shutil.which("sinfo") or subprocess.run(["sinfo", "-h"], capture_output=True).returncode != 0:
        pytest.skip("no running Slurm (tools/slurm_local.sh starts one)")
    rc, err = run_main(["study", "synthetic", "--launcher", "slurm", "--slurm-partition", "no_such_partition",
                        "--reports-dir", str(tmp_path / "reports")], tmp_path, monkeypatch, capsys)
    one_line(rc, err, "'no_such_partition' is not a partition", tmp_path)

def tiny_predictor(path, **change):
    import torch
    from dcat.model import build_model
    from dcat.runs import save_predictor
    net = build_model("dcat", 2, backbone_a="efficientnet_b0", backbone_b="resnet18", fusion_dim=16)
    save_predictor(path, net, classes=["a", "b"], image_size=32, mc_samples=2, conformal={0.1: 0.5}, seed=0)
    if change:
        ck = torch.load(path, weights_only=True); ck["model_config"].update(change); torch.save(ck, path)
    return path

@pytest.mark.filterwarnings("ignore:.*no pretrained weights file")
def test_predict_names_the_file(tmp_path, monkeypatch, capsys):
    img = tmp_path / "x.png"; Image.fromarray(np.zeros((32, 32), np.uint8)).save(img)
    bad = tiny_predictor(tmp_path / "bad.predictor.pt", fusion_dim=32)       # recorded width, other weights
    rc, err = run_main(["predict", str(img), "--checkpoint", str(bad)], tmp_path, monkeypatch, capsys)
    assert rc == 1 and f"{bad}: its weights do not match" in err and err.count("\n") == 1, err
    good = tiny_predictor(tmp_path / "good.predictor.pt")
    rc, err = run_main(["predict", str(img), "--checkpoint", str(good), "--mc-samples", "0"], tmp_path, monkeypatch, capsys)
    assert rc == 1 and "T=0" in err and err.count("\n") == 1, err                # 0 is refused, never read as the default

@pytest.mark.parametrize("content", ["{not json", "[1, 2]", '{"dataset": "x"}', b"\xff\xfe\x00"])
def test_summary_and_status_name_a_corrupt_record(tmp_path, content, monkeypatch, capsys):
    d = tmp_path / "reports" / "synthetic" / "dcat" / "seed-0"; d.mkdir(parents=True)
    (d / "metrics.json").write_bytes(content if isinstance(content, bytes) else content.encode())
    rc, err = run_main(["summary", "--reports-dir", str(tmp_path / "reports")], tmp_path, monkeypatch, capsys)
    assert rc == 0 and f"{d / 'metrics.json'}" in err and "Traceback" not in err and err.startswith("dcat: warning:"), err
    rc, err = run_main(["study", "synthetic", "--status", "--reports-dir", str(tmp_path / "reports")], tmp_path, monkeypatch, capsys)
    assert rc == 0 and "Traceback" not in err, err

def test_unexpected_error_is_one_line_with_a_log(tmp_path, monkeypatch, capsys):
    "Anything unexpected: one line naming the command and the exception, the traceback in a log file; --debug raises."
    import dcat.study
    def boom(*a, **k): raise ZeroDivisionError("something nobody foresaw")
    monkeypatch.setattr(dcat.study, "plan_study", boom)
    rc, err = run_main(["study", "synthetic", "--reports-dir", str(tmp_path / "reports")], tmp_path, monkeypatch, capsys)
    assert rc == 2 and err.count("\n") == 1 and "study: unexpected ZeroDivisionError: something nobody foresaw" in err, err
    log = err.split("traceback in ")[1].split(";")[0]
    assert "Traceback" in open(log).read() and "boom" in open(log).read()
    os.unlink(log)
    from dcat.cli import main
    with pytest.raises(ZeroDivisionError): main(["--debug", "study", "synthetic", "--reports-dir", str(tmp_path / "reports")])

# ---- fuzzing: no traceback reaches the terminal, whatever the value or the file

import dataclasses
from hypothesis import HealthCheck, given, settings as hsettings, strategies as hst
from dcat.config import Settings
FIELDS = sorted(f.name for f in dataclasses.fields(Settings))

@hsettings(max_examples=80, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(key=hst.sampled_from(FIELDS), value=hst.text(max_size=12))
def test_fuzz_setting_values(tmp_path, monkeypatch, capsys, key, value):
    "Any value for any setting: `dcat study --status` answers it (status lines) or refuses it in one line."
    rc, err = run_main(["study", "synthetic", "--status", "-p", f"{key}={value}", "--reports-dir", str(tmp_path / "reports")],
                       tmp_path, monkeypatch, capsys)
    assert "Traceback" not in err and rc in (0, 1), (key, value, err)
    if rc: assert err.startswith("dcat: error:") and err.count("\n") == 1, (key, value, err)

@hsettings(max_examples=40, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(blob=hst.binary(max_size=300), drop=hst.sampled_from(["train_images", "val_labels", "test_images", None]),
       shape=hst.lists(hst.integers(0, 5), min_size=0, max_size=4), dtype=hst.sampled_from(["uint8", "float32", "int64", "bool"]))
def test_fuzz_data_files(tmp_path, monkeypatch, capsys, blob, drop, shape, dtype):
    "Random bytes, or a MedMNIST-format file with a key missing and another of random shape and type: one line each."
    (tmp_path / "blob.npz").write_bytes(blob)
    arrays = good_arrays(); arrays["train_images"] = np.zeros(shape, dtype)
    if drop: arrays.pop(drop)
    else: arrays.pop("test_labels")
    np.savez(tmp_path / "broken.npz", **arrays)
    for f in ("blob.npz", "broken.npz"):
        rc, err = run_main(["study", str(tmp_path / f), "-p", "epochs=1", "--reports-dir", str(tmp_path / "reports")],
                           tmp_path, monkeypatch, capsys)
        assert rc == 1 and "Traceback" not in err and err.startswith("dcat: error:") and err.count("\n") == 1, (f, err)
