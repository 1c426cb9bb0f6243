"""One settings file per run: a project folder outside the checkout, with its own `settings.ini`.

The user's folder holds a `settings.ini` with a dataset section that the package's own file lacks (`mydata`, a
synthetic source) and a data directory with a MedMNIST-format file. From there (as the working directory, by
`DCAT_SETTINGS`, or by an explicit `path=`), `load_settings` must find that section, resolve MedMNIST flags and
paths against that project's `data_dir`, and never fall back to the settings file beside the installed package.
Also here: the file-permission and stale-temporary-file behaviour of `dcat.config.atomic_write`.
"""
import os, subprocess, sys, time
from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT
from dcat.config import (ENV_OVERRIDES, atomic_write, atomic_write_text, clean_stale_tmp, datasets, load_settings,
                         settings_path)
from dcat.data import load_dataset

PROJECT_INI = """\
[study]
data_dir = datasets
reports_dir = out/reports
checkpoints_dir = out/checkpoints
dataset = mydata
model = dcat
seed = 0
image_size = 32
epochs = 1
batch_size = 8
min_steps = 0
size_variant =

[mydata]
source = synthetic
classes = cat, dog, bird
image_size = 24
description = a dataset only this project knows
"""

def write_npz(path: Path, num_classes: int = 2, flat_labels: bool = True, size: int = 28) -> Path:
    "A small MedMNIST-format file (labels (N,) like the shared breastmnist.npz, or (N, 1))."
    rng = np.random.default_rng(0); arrays = {}
    for s, n in (("train", 12), ("val", 6), ("test", 6)):
        y = np.arange(n) % num_classes
        arrays[f"{s}_images"] = rng.integers(0, 256, (n, size, size), dtype=np.uint8)
        arrays[f"{s}_labels"] = y if flat_labels else y[:, None]
    path.parent.mkdir(parents=True, exist_ok=True); np.savez(path, **arrays)
    return path

@pytest.fixture
def project(tmp_path, monkeypatch) -> Path:
    "A project folder outside the checkout: settings.ini, datasets/breastmnist.npz and datasets/breastmnist_64.npz."
    for env in [*ENV_OVERRIDES.values(), "DCAT_SETTINGS"]: monkeypatch.delenv(env, raising=False)
    root = tmp_path / "my_project"; root.mkdir()
    assert ROOT not in root.parents and root != ROOT
    (root / "settings.ini").write_text(PROJECT_INI)
    write_npz(root / "datasets" / "breastmnist.npz"); write_npz(root / "datasets" / "breastmnist_64.npz", size=64)
    return root

def test_the_package_settings_lack_the_project_section():
    assert "mydata" not in datasets(ROOT / "settings.ini")

def test_settings_found_from_the_project_folder(project, monkeypatch):
    monkeypatch.chdir(project)
    assert settings_path() == project / "settings.ini"
    cfg = load_settings("mydata")
    assert cfg["classes"] == ["cat", "dog", "bird"] and cfg["image_size"] == 24 and cfg["source"] == "synthetic"
    assert cfg["data_dir"] == str(project / "datasets") and cfg["reports_dir"] == str(project / "out" / "reports")
    assert load_settings()["dataset"] == "mydata"  # the project's own default dataset
    assert load_dataset(cfg).num_classes == 3

def test_explicit_path_and_DCAT_SETTINGS_from_anywhere(project, monkeypatch, tmp_path):
    elsewhere = tmp_path / "elsewhere"; elsewhere.mkdir(); monkeypatch.chdir(elsewhere)
    # from a folder without settings.ini the file beside the package is the fallback, and it lacks the section:
    # which is why a run must hand its settings file over explicitly (path= or DCAT_SETTINGS)
    with pytest.raises((KeyError, FileNotFoundError), match="mydata|settings.ini not found"): load_settings("mydata")
    cfg = load_settings("mydata", path=project / "settings.ini")
    assert cfg["data_dir"] == str(project / "datasets") and cfg["description"] == "a dataset only this project knows"
    monkeypatch.setenv("DCAT_SETTINGS", str(project / "settings.ini"))
    assert settings_path() == project / "settings.ini" and load_settings("mydata") == cfg
    monkeypatch.setenv("DCAT_SETTINGS", str(project / "missing.ini"))
    with pytest.raises(FileNotFoundError, match="missing.ini"): load_settings("mydata")

@pytest.mark.filterwarnings("ignore:.*split sizes")  # the small files are not the official sizes
def test_medmnist_flags_and_paths_resolve_against_the_project(project, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    ini = project / "settings.ini"
    br = load_settings("breastmnist", path=ini)
    assert br["location"] == "breastmnist.npz" and br["classes"] == ["malignant", "normal, benign"] and br["image_size"] == 32
    b = load_dataset(br)
    assert b.classes == br["classes"] and len(b.train) == 12 and b.source == str(project / "datasets" / "breastmnist.npz")
    v64 = load_settings("breastmnist", path=ini, overrides={"size_variant": 64})
    assert (v64["dataset"], v64["image_size"]) == ("breastmnist_64", 64)
    assert load_dataset(v64).train.dataset.images.shape[-1] == 64
    # a path, relative to the working directory, to a file that is no MedMNIST flag: label indices as classes
    write_npz(tmp_path / "scans" / "ward 7 (2024).npz", num_classes=3, flat_labels=False)
    by_path = load_settings("scans/ward 7 (2024).npz", path=ini)
    assert by_path["dataset"] == "ward_7_2024" and Path(by_path["location"]).is_absolute()
    assert load_dataset(by_path).classes == ["0", "1", "2"]
    # a section of the project's file overrides INFO and the file
    (project / "settings.ini").write_text(PROJECT_INI + "\n[ward_7_2024]\nclasses = a, b, c\nimage_size = 40\n")
    over = load_settings(str(tmp_path / "scans" / "ward 7 (2024).npz"), path=ini)
    assert over["classes"] == ["a", "b", "c"] and over["image_size"] == 40 and load_dataset(over).classes == ["a", "b", "c"]

def test_unsupported_and_unknown_datasets_name_the_problem(project):
    ini = project / "settings.ini"
    with pytest.raises(ValueError, match="multi-label, binary-class"): load_settings("chestmnist", path=ini)
    with pytest.raises(KeyError, match="nosuch"): load_settings("nosuch", path=ini)
    with pytest.raises(FileNotFoundError, match="nosuch.npz"): load_settings("nosuch.npz", path=ini)

def test_study_from_a_project_folder_outside_the_checkout(project, monkeypatch):
    """The settings side of a study run from the user's own folder. To be extended with the end-to-end run
    (`dcat study mydata` from `project` as cwd, then reports/mydata/<model>/metrics.json recording the project's
    settings), once `run_study` hands the settings file to the kernel."""
    monkeypatch.chdir(project)
    cfg = load_settings("mydata", overrides={"epochs": 1})
    assert Path(cfg["reports_dir"]) == project / "out" / "reports"
    assert load_settings("mydata", path=settings_path()) == load_settings("mydata")

def test_dcat_study_from_a_project_folder(tmp_path):
    "End to end: `dcat study mydata` started in a folder outside the checkout whose settings.ini alone knows `mydata`."
    import json
    from conftest import tool
    proj = tmp_path / "elsewhere"; proj.mkdir()
    ini = (ROOT / "settings.ini").read_text().replace("data_dir = data\n", "data_dir = datasets\n")
    (proj / "settings.ini").write_text(ini + "\n[mydata]\nsource = synthetic\nclasses = cat, dog, bird\nimage_size = 32\n"
                                       "min_steps = 0\ndescription = a dataset only this project knows\n")
    env = {k: v for k, v in os.environ.items() if k not in [*ENV_OVERRIDES.values(), "DCAT_SETTINGS"]}
    r = subprocess.run([tool("dcat"), "study", "mydata", "--quiet", "-p", "epochs=1", "-p", "mc_samples=2", "-p",
                        "backbone_a=efficientnet_b0", "-p", "backbone_b=resnet18", "-p", "fusion_dim=16",
                        "-p", "batch_size=32", "-p", "bootstrap_resamples=200"], cwd=proj, env=env, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-4000:]
    rec = json.loads((proj / "reports/mydata/dcat/seed-0/metrics.json").read_text())
    assert rec["dataset"] == "mydata" and rec["data"]["classes"] == ["cat", "dog", "bird"]
    assert rec["params"]["description"] == "a dataset only this project knows" and rec["params"]["epochs"] == 1
    assert list((proj / "checkpoints/mydata/dcat").glob("seed-0-*.pt")), "checkpoints go to the project's folder"

# --- atomic writes: permissions and stray temporary files -------------------------------------------------------

def test_atomic_write_gives_the_mode_of_a_plain_open(tmp_path):
    for umask in (0o022, 0o077, 0o002):
        code = (f"import os; os.umask({umask:#o}); from dcat.config import atomic_write_text; "
                f"atomic_write_text({str(tmp_path / 'a')!r} + '{umask}', 'x'); open({str(tmp_path / 'p')!r} + '{umask}', 'w').close()")
        subprocess.run([sys.executable, "-c", code], check=True)
        a, p = (tmp_path / f"a{umask}").stat().st_mode & 0o777, (tmp_path / f"p{umask}").stat().st_mode & 0o777
        assert a == p == 0o666 & ~umask, (oct(a), oct(p))
    os.chmod(tmp_path / "a18", 0o600); atomic_write_text(tmp_path / "a18", "y")  # 18 == 0o022: a replaced file keeps its mode
    assert (tmp_path / "a18").stat().st_mode & 0o777 == 0o600

def test_a_killed_writer_leaves_a_temp_file_that_the_next_write_removes(tmp_path):
    target = tmp_path / "model.pt"
    code = (f"import os\nfrom dcat.config import atomic_write\nwith atomic_write({str(target)!r}) as f:\n"
            f"    f.write(b'half'); f.flush(); os._exit(9)\n")  # dies mid-write, like kill -9
    subprocess.run([sys.executable, "-c", code])
    stray = [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    assert len(stray) == 1 and not target.exists() and stray[0].name.startswith(".model.pt.")
    other = tmp_path / ".other.pt.x1y2z3.tmp"; other.write_text("someone else's"); os.utime(other, (time.time() - 10 ** 6,) * 2)
    with atomic_write(target) as f:
        mine = [p for p in tmp_path.iterdir() if p.name.startswith(".model.pt.")]
        assert mine and all(str(os.getpid()) in p.name for p in mine)  # the dead writer's file is gone, ours is live
        f.write(b"whole")
        assert clean_stale_tmp(target) == []  # our own live temp file is never taken
    assert target.read_bytes() == b"whole" and other.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([".other.pt.x1y2z3.tmp", "model.pt"])
