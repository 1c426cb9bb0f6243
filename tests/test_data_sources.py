"""Data sources as users have them: the Kermany folder split by patient (on generated file names), the real folder
when it is available, the budget that scales with the dataset, the shipped PneumoniaMNIST file pinned by its
checksum, and a missing MedMNIST file fetched from a local mirror (nothing leaves the machine)."""
import functools, hashlib, http.server, shutil, subprocess, threading

import numpy as np
import pytest
import torch
from PIL import Image

import dcat.data
from conftest import ROOT, real_data_dir
from dcat.config import load_settings, sha256_file
from dcat.data import MEDMNIST_URL_ENV, SPLITS, load_dataset, load_folder, patient_id
from dcat.train import resolve_epochs

def kermany_tree(root, n_patients=(60, 40), test_patients=(10, 8), seed=0):
    "The release's layout and name patterns (no val folder), 1-5 images per patient, tiny RGB-saved gray JPEGs."
    rng = np.random.default_rng(seed); img = Image.fromarray(np.full((10, 12), 100, np.uint8)).convert("RGB")
    def names(n_pneu, n_norm, start):
        for i in range(start, start + n_pneu):
            for j in range(rng.integers(1, 6)): yield "PNEUMONIA", f"person{i}_{'virus' if i % 4 == 0 else 'bacteria'}_{i * 10 + j}.jpeg"
        for i in range(start, start + n_norm):
            pre = "NORMAL2-IM" if i % 2 else "IM"  # the two normal batches reuse patient numbers
            for j in range(rng.integers(1, 6)): yield "NORMAL", f"{pre}-{i:04d}-{j + 1:04d}.jpeg"
    for split, (n_pneu, n_norm), start in (("train", n_patients, 1), ("test", test_patients, 9000)):
        for c, name in names(n_pneu, n_norm, start):
            (root / split / c).mkdir(parents=True, exist_ok=True); img.save(root / split / c / name)
    return root

def patients(split):
    return {patient_id(p) for p in split.dataset.paths}

def test_patient_ids_from_file_names():
    got = [patient_id(n) for n in ("person1017_bacteria_2948.jpeg", "person447_virus_921_1.jpeg", "IM-0429-0001-0002.jpeg",
                                   "IM-0115-0001.jpeg", "NORMAL2-IM-0115-0001.jpeg", "CNV-1016042-1.jpeg", "x.png")]
    assert got == ["person1017", "person447", "IM-0429", "IM-0115", "NORMAL2-IM-0115", "1016042", None]

@pytest.mark.parametrize("seed", range(4))
def test_validation_split_keeps_each_patient_on_one_side(tmp_path, seed):
    root = kermany_tree(tmp_path / "chest_xray", seed=seed)
    b = load_folder(root, 16, classes=["NORMAL", "PNEUMONIA"], split_by="patient", seed=seed)
    assert not patients(b.train) & patients(b.val) and not patients(b.train) & patients(b.test)
    assert None not in patients(b.train) | patients(b.val)
    n_train_files = len(list((root / "train").rglob("*.jpeg")))
    assert len(b.train) + len(b.val) == n_train_files and all("/train/" in p for p in b.val.dataset.paths)
    assert b.class_counts("val").min() > 0 and 0.05 < len(b.val) / n_train_files < 0.16
    # IM-0003 and NORMAL2-IM-0003 are different patients (our choice): both ids exist and are kept apart
    ids = patients(b.train) | patients(b.val)
    assert any(i.startswith("NORMAL2-IM-") for i in ids) and any(i.startswith("IM-") for i in ids)
    # the same seed draws the same split
    again = load_folder(root, 16, classes=["NORMAL", "PNEUMONIA"], split_by="patient", seed=seed)
    assert again.val.dataset.paths == b.val.dataset.paths and torch.equal(again.train.dataset.images, b.train.dataset.images)

def test_kermany_settings_split_by_patient_and_cache(tmp_path):
    kermany_tree(tmp_path / "chest_xray")
    b = load_dataset(load_settings("kermany_pneumonia", overrides={"data_dir": str(tmp_path), "image_size": 16}))
    assert not patients(b.train) & patients(b.val) and b.train.dataset.images.shape[1:] == (1, 16, 16)
    assert any("by patient" in n for n in b.notes)

def test_the_real_kermany_folder():
    "The shared chest_xray/ folder at 64 px: canonical counts, a patient-disjoint validation split."
    d = real_data_dir()
    if d is None or not (d / "chest_xray").is_dir(): pytest.skip("chest_xray/ not available (set DCAT_DATA_DIR)")
    b = load_dataset(load_settings("kermany_pneumonia", overrides={"data_dir": str(d), "image_size": 64}), progress=False)
    assert sum(len(b.split(s)) for s in SPLITS) == 5840 and len(b.test) == 624
    assert (b.class_counts("train") + b.class_counts("val")).tolist() == [1341, 3875]
    assert not patients(b.train) & patients(b.val)

def test_resolve_epochs_floor():
    cfg = {"epochs": 8, "batch_size": 64, "min_steps": 500, "max_train": 0}
    assert resolve_epochs(cfg, 4708) == 8                       # PneumoniaMNIST default: 592 steps, unchanged
    assert resolve_epochs(cfg, 546) == 56                       # BreastMNIST: 9 steps per epoch
    assert resolve_epochs({**cfg, "min_steps": 0}, 546) == 8
    default = load_settings("pneumoniamnist")
    assert resolve_epochs(default, 4708) == default["epochs"] and default["min_steps"] <= 592

SHIPPED_SHA256 = "d0bfa3330f26554c4117328b1117f52bfb3746404b0594c58f37a09b4314d396"

def write_npz(path, n=(12, 4, 6), size=28, seed=0):
    "A small MedMNIST-format file with random pixels and two classes."
    rng = np.random.default_rng(seed)
    arrays = {}
    for s, k in zip(SPLITS, n):
        arrays[f"{s}_images"] = rng.integers(0, 256, (k, size, size), dtype=np.uint8)
        arrays[f"{s}_labels"] = (np.arange(k) % 2)[:, None].astype(np.uint8)
    np.savez(path, **arrays)
    return path

def test_the_shipped_pneumoniamnist_is_the_pinned_file():
    "data/pneumoniamnist.npz ships with the project, is the file the settings pin, and is the only data file git tracks."
    f = ROOT / "data" / "pneumoniamnist.npz"
    assert f.is_file() and f.stat().st_size == 4_171_018
    assert sha256_file(f) == SHIPPED_SHA256 == load_settings("pneumoniamnist")["sha256"]
    b = load_dataset(load_settings("pneumoniamnist", overrides={"data_dir": str(ROOT / "data"), "image_size": 28}))
    assert b.sha256 == SHIPPED_SHA256 and [len(b.split(s)) for s in SPLITS] == [4708, 524, 624]
    if shutil.which("git") and (ROOT / ".git").exists():
        ignored = lambda p: subprocess.run(["git", "check-ignore", "-q", p], cwd=ROOT).returncode == 0
        assert not ignored("data/pneumoniamnist.npz") and not ignored("data/README.md")
        assert ignored("data/breastmnist.npz") and ignored("data/pneumoniamnist_64.npz") and ignored("data/chest_xray/x.jpeg")

def test_a_file_that_is_not_the_pinned_one_is_refused(tmp_path):
    "Another file under the pinned name: a ValueError naming the file, the expected and the actual sha256."
    bad = write_npz(tmp_path / "pneumoniamnist.npz")
    cfg = load_settings("pneumoniamnist", overrides={"data_dir": str(tmp_path)})
    with pytest.raises(ValueError) as e: load_dataset(cfg)
    for needle in ("pneumoniamnist.npz", SHIPPED_SHA256, sha256_file(bad)): assert needle in str(e.value)
    with pytest.raises(ValueError, match="64 hex digits"): load_dataset({**cfg, "sha256": "d0bf"})
    from dcat.config import parse_overrides                          # `-p sha256=`: this copy, knowingly, unchecked
    with pytest.warns(UserWarning, match="split sizes"):
        assert load_dataset(load_settings("pneumoniamnist", overrides={"data_dir": str(tmp_path), **parse_overrides(["sha256="])})).sha256 == sha256_file(bad)

@pytest.fixture
def mirror(tmp_path, monkeypatch):
    "A local HTTP server on 127.0.0.1 serving tmp_path/mirror, and DCAT_MEDMNIST_URL pointing at it."
    root = tmp_path / "mirror"
    root.mkdir()
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args): pass
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(root)))
    threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    url = f"http://127.0.0.1:{srv.server_address[1]}"
    for k in ("NO_PROXY", "no_proxy"): monkeypatch.setenv(k, "127.0.0.1,localhost")
    monkeypatch.setenv(MEDMNIST_URL_ENV, url)
    yield root, url
    srv.shutdown()
    srv.server_close()

def with_md5(monkeypatch, flag, md5):
    "MedMNIST's INFO as dcat.data reads it, with `flag`'s 28 px MD5 replaced (a generated file is not the official one)."
    real = dcat.data.medmnist_info
    monkeypatch.setattr(dcat.data, "medmnist_info", lambda f=None: {**real(f), "MD5": md5} if f == flag else real(f))

@pytest.mark.filterwarnings("ignore:breastmnist.npz. split sizes")   # a tiny generated file, not the official sizes
def test_a_missing_medmnist_file_is_fetched_checked_and_loaded(tmp_path, mirror, monkeypatch):
    "load_settings + load_dataset with DCAT_MEDMNIST_URL: the file arrives, is checked and loads; a wrong MD5 leaves nothing."
    served = write_npz(mirror[0] / "breastmnist.npz", seed=1)
    data = tmp_path / "data"
    data.mkdir()
    cfg = load_settings("breastmnist", overrides={"data_dir": str(data), "image_size": 28})
    with pytest.raises(ValueError) as e: load_dataset(cfg, progress=False)     # INFO's MD5: the official file's
    assert "breastmnist.npz" in str(e.value) and dcat.data.medmnist_info("breastmnist")["MD5"] in str(e.value)
    assert list(data.iterdir()) == []                                          # not kept, no temporary file either
    with_md5(monkeypatch, "breastmnist", hashlib.md5(served.read_bytes()).hexdigest())
    b = load_dataset(cfg, progress=False)
    assert (data / "breastmnist.npz").read_bytes() == served.read_bytes() and b.sha256 == sha256_file(served)
    assert b.classes == ["malignant", "normal, benign"] and [len(b.split(s)) for s in SPLITS] == [12, 4, 6]
    assert sorted(p.name for p in data.iterdir()) == ["breastmnist.npz"]

def test_a_fetch_that_cannot_happen_is_one_line_naming_the_file(tmp_path, mirror, monkeypatch):
    "A file the mirror lacks (HTTP 404) and a server that does not answer: one line naming the file and the folder."
    data = tmp_path / "data"
    data.mkdir()
    with pytest.raises(FileNotFoundError) as e:
        load_dataset(load_settings("breastmnist_64", overrides={"data_dir": str(data)}), progress=False)
    msg = str(e.value)
    assert msg.startswith(f"breastmnist_64.npz: not in {data.resolve()}") and "HTTP 404" in msg and "\n" not in msg
    monkeypatch.setenv(MEDMNIST_URL_ENV, "http://127.0.0.1:1/medmnist")       # port 1: nothing listens
    with pytest.raises(FileNotFoundError, match=r"breastmnist.npz: not in .* could not be downloaded from http://127.0.0.1:1/medmnist/breastmnist.npz"):
        load_dataset(load_settings("breastmnist", overrides={"data_dir": str(data)}), progress=False)
    assert list(data.iterdir()) == []


def covid_tree(root, n=(60, 90), seed=0):
    """COVID-19 Radiography's layout (class folders, no split) with a near-duplicate groups file: groups of 2-5 files
    inside one class, as `DUPLICATE_GROUPS.tsv` lists them (group, file, sha256_prefix)."""
    rng = np.random.default_rng(seed); rows, g = ["group\tfile\tsha256_prefix"], 0
    for c, m in zip(("COVID", "Normal"), n):
        (root / c).mkdir(parents=True, exist_ok=True)
        for i in range(1, m + 1): Image.fromarray(rng.integers(0, 255, (12, 12), dtype=np.uint8)).save(root / c / f"{c}-{i}.png")
        i = 1
        while i + 5 <= m:                       # about half of each class in groups
            k = int(rng.integers(2, 6)); g += 1
            rows += [f"{g}\t{c}/{c}-{j}.png\t0" for j in range(i, i + k)]
            i += k + int(rng.integers(0, 6))
    (root / "DUPLICATE_GROUPS.tsv").write_text("\n".join(rows) + "\n")
    return root

def _group_splits(b, frac=0.5, seed=0):
    "Each split's set of listed groups, calibration drawn from validation as the study draws it."
    from dcat.loaders import make_loaders, split_validation
    ld = split_validation(b, make_loaders(b, batch_size=8), frac, seed)
    of = dict(zip(b.val.dataset.paths, b.groups["val"]))
    out = {s: set(g for g in b.groups[s] if g.startswith("group ")) for s in ("train", "test")}
    for s in ("val", "cal"):
        out[s] = {of[b.val.dataset.paths[i]] for i in ld[s].dataset.indices} & {g for g in b.groups["val"] if g.startswith("group ")}
    return out

@pytest.mark.parametrize("seed", range(4))
def test_group_split_keeps_each_near_duplicate_group_in_one_split(tmp_path, seed):
    root = covid_tree(tmp_path / "covid19_radiography", seed=seed)
    b = load_folder(root, 12, split_by="group", split_groups="DUPLICATE_GROUPS.tsv", seed=seed)
    sets = _group_splits(b, seed=seed)
    for a in sets:
        for c in sets:
            if a < c: assert not sets[a] & sets[c], (a, c, sets[a] & sets[c])
    assert sum(len(v) for v in sets.values()) == len({l.split("\t")[0] for l in (root / "DUPLICATE_GROUPS.tsv").read_text().splitlines()[1:]})
    assert sum(len(b.split(s)) for s in SPLITS) == 150 and any("listed group" in n and "no listed group" in n for n in b.notes)
    assert 0.12 < len(b.test) / 150 < 0.28 and b.class_counts("test").min() > 0
    # without the groups, a plain stratified split does put groups on both sides (what the grouped split prevents)
    plain = load_folder(root, 12, seed=seed)
    of = {p: g for p, g in zip(b.train.dataset.paths + b.val.dataset.paths + b.test.dataset.paths, b.groups["train"] + b.groups["val"] + b.groups["test"])}
    tr, te = {of[p] for p in plain.train.dataset.paths}, {of[p] for p in plain.test.dataset.paths}
    assert {g for g in tr & te if g.startswith("group ")}

def test_group_split_refuses_a_bad_groups_file(tmp_path):
    root = covid_tree(tmp_path / "c")
    with pytest.raises(FileNotFoundError, match="split_groups.*nowhere.tsv"): load_folder(root, 12, split_by="group", split_groups="nowhere.tsv")
    (root / "bad.tsv").write_text("id\tpath\n1\tCOVID/COVID-1.png\n")
    with pytest.raises(ValueError, match="bad.tsv.*'group' and 'file'"): load_folder(root, 12, split_by="group", split_groups="bad.tsv")
    (root / "gone.tsv").write_text("group\tfile\n1\tCOVID/COVID-999.png\n")
    with pytest.raises(ValueError, match="gone.tsv.*COVID-999"): load_folder(root, 12, split_by="group", split_groups="gone.tsv")
    with pytest.raises(ValueError, match="needs its groups file"): load_folder(root, 12, split_by="group")

def test_the_real_covid19_radiography_split():
    "The shared copy through its settings section: 13,808 images, two classes, no near-duplicate group in two splits."
    d = real_data_dir()
    if d is None or not (d / "covid19_radiography").is_dir(): pytest.skip("covid19_radiography/ not available (set DCAT_DATA_DIR)")
    cfg = load_settings("covid19_radiography", overrides={"data_dir": str(d), "image_size": 16})
    b = load_dataset(cfg, progress=False)
    assert sum(len(b.split(s)) for s in SPLITS) == 13808 and b.classes == ["COVID", "Normal"]
    assert (sum(b.class_counts(s) for s in SPLITS)).tolist() == [3616, 10192]
    sets = _group_splits(b, cfg.get("calibration_frac") or 0.5, cfg.get("data_seed") or 0)
    assert sum(len(v) for v in sets.values()) == 198
    for a in sets:
        for c in sets:
            if a < c: assert not sets[a] & sets[c], (a, c)
