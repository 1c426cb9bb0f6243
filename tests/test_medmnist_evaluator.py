"""Our metrics against MedMNIST's own evaluator (`medmnist.evaluator`), on the same synthetic predictions.

`dcat.stats.classification_metrics` must give the AUC and accuracy that MedMNIST's `getAUC` / `getACC` and its
`Evaluator` give, for a binary task (AUC of the positive class = index 1; accuracy at p > 0.5, which is argmax),
a multi-class task (one-vs-rest AUC averaged over classes; accuracy of the argmax) and the ordinal task that we
train as multi-class (MedMNIST scores it the same way). Nothing is downloaded: the `Evaluator` reads a MedMNIST-format
file that the test writes, with labels shaped (N,) as in the shared breastmnist.npz or (N, 1) as in the official files.
"""
import numpy as np
import pytest

from conftest import real_data_dir
from dcat.config import load_settings
from dcat.data import load_dataset
from dcat.stats import classification_metrics

evaluator = pytest.importorskip("medmnist.evaluator")

def predictions(n: int, num_classes: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    "Labels and informative, imperfect softmax probabilities (no ties at 0.5)."
    rng = np.random.default_rng(seed)
    y = rng.integers(0, num_classes, n); y[:num_classes] = np.arange(num_classes)  # every class present
    logits = rng.normal(0, 1, (n, num_classes)); logits[np.arange(n), y] += 1.2
    p = np.exp(logits); p /= p.sum(1, keepdims=True)
    return y, p

def write_medmnist(root, flag: str, y_test: np.ndarray, label_shape: str) -> None:
    "A MedMNIST-format file with the given test labels and small blank images (what `Evaluator` and `load_npz` read)."
    lab = (lambda y: y.reshape(-1, 1)) if label_shape == "col" else (lambda y: y.reshape(-1))
    k = int(y_test.max()) + 1; small = np.arange(4 * k) % k
    arrays = {"train_labels": lab(small), "val_labels": lab(small), "test_labels": lab(y_test)}
    arrays.update({f"{s}_images": np.zeros((len(arrays[f"{s}_labels"]), 28, 28), np.uint8) for s in ("train", "val", "test")})
    np.savez(root / f"{flag}.npz", **arrays)

CASES = [("breastmnist", "binary-class", 2), ("bloodmnist", "multi-class", 8), ("retinamnist", "ordinal-regression", 5)]

@pytest.mark.parametrize("flag,task,num_classes", CASES)
def test_auc_and_accuracy_agree_with_getAUC_getACC(flag, task, num_classes):
    from dcat.config import medmnist_info
    assert medmnist_info(flag)["task"] == task and len(medmnist_info(flag)["label"]) == num_classes
    for seed in range(3):
        y, p = predictions(400, num_classes, seed)
        ours = classification_metrics(y, p)
        for labels in (y, y.reshape(-1, 1)):
            assert ours["auc"] == pytest.approx(evaluator.getAUC(labels, p, task), abs=1e-12)
            assert ours["accuracy"] == pytest.approx(evaluator.getACC(labels, p, task), abs=1e-12)

@pytest.mark.filterwarnings("ignore:.*split sizes")  # the small test files are not the official sizes
@pytest.mark.parametrize("label_shape", ["flat", "col"])
@pytest.mark.parametrize("flag,task,num_classes", CASES)
def test_evaluator_on_a_file_agrees_with_our_pipeline(tmp_path, flag, task, num_classes, label_shape):
    "The file goes through our settings and loader; MedMNIST's Evaluator reads the same file's labels."
    y, p = predictions(300, num_classes, seed=1)
    write_medmnist(tmp_path, flag, y, label_shape)
    bundle = load_dataset(load_settings(flag, overrides={"data_dir": str(tmp_path), "image_size": 28}))
    assert bundle.num_classes == num_classes and (bundle.test.labels == y).all()
    ours = classification_metrics(bundle.test.labels, p, bundle.classes)
    theirs = evaluator.Evaluator(flag, "test", root=str(tmp_path)).evaluate(p)
    assert ours["auc"] == pytest.approx(theirs.AUC, abs=1e-12) and ours["accuracy"] == pytest.approx(theirs.ACC, abs=1e-12)

def test_evaluator_on_the_real_breastmnist_labels():
    "The shared breastmnist.npz (labels shaped (N,)), with synthetic scores: same AUC and accuracy."
    d = real_data_dir()
    if d is None or not (d / "breastmnist.npz").is_file(): pytest.skip("breastmnist.npz not available (set DCAT_DATA_DIR)")
    bundle = load_dataset(load_settings("breastmnist", overrides={"data_dir": str(d)}))
    y = bundle.test.labels; rng = np.random.default_rng(0)
    p1 = np.clip(0.5 + 0.3 * (y - 0.5) + rng.normal(0, 0.25, len(y)), 0.01, 0.99); p = np.stack([1 - p1, p1], 1)
    ours = classification_metrics(y, p, bundle.classes)
    theirs = evaluator.Evaluator("breastmnist", "test", root=str(d)).evaluate(p)
    assert ours["auc"] == pytest.approx(theirs.AUC, abs=1e-12) and ours["accuracy"] == pytest.approx(theirs.ACC, abs=1e-12)
