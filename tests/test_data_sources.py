"""Data sources as users have them: the Kermany folder split by patient (on generated file names), the real folder
when it is available, and the budget that scales with the dataset."""
import numpy as np
import pytest
import torch
from PIL import Image

from conftest import real_data_dir
from dcat.config import load_settings
from dcat.data import SPLITS, load_dataset, load_folder, patient_id
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
