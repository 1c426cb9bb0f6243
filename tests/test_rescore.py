"""`tools/rescore_positive.py`: a run evaluated with label 1 as the positive class gets its F1, AUPR and their intervals
for the class its settings name, from its files; it refuses when the stored figures do not come out again."""
import json, sys

import numpy as np
import pytest

from conftest import ROOT

sys.path.insert(0, str(ROOT / "tools"))
from rescore_positive import rescore  # noqa: E402

from dcat.config import to_jsonable
from dcat.stats import classification_metrics, metrics_with_ci

def fake_run(folder, positive_class="COVID", n=120):
    "A finished run's files as a run evaluated before `positive_class` was honoured wrote them (label 1 positive)."
    r = np.random.default_rng(0)
    y = (np.arange(n) % 3 == 0).astype(int)                    # label 1 the minority: the two classes' F1 differ
    q = np.clip(0.3 + 0.4 * y + r.normal(0, 0.2, n), 0.01, 0.99); p = np.c_[1 - q, q].astype(np.float32)
    ent = -(p * np.log(p)).sum(1)
    classes = ["COVID", "Normal"]
    rec = {"data": {"classes": classes}, "params": {"seed": 0, "bootstrap_resamples": 60, "positive_class": positive_class},
           "metrics": classification_metrics(y, p, classes), "intervals": metrics_with_ci(y, p, ent, n_resamples=60, seed=0)}
    folder.mkdir(parents=True)
    (folder / "metrics.json").write_text(json.dumps(to_jsonable(rec), indent=2))
    np.savez(folder / "predictions.npz", y_test=y, p_test=p, entropy=ent)
    return y, p

def test_rescored_for_the_named_class(tmp_path):
    y, p = fake_run(tmp_path / "run")
    print(rescore(tmp_path / "run"))
    rec = json.loads((tmp_path / "run" / "metrics.json").read_text())
    m0 = classification_metrics(y, p, ["COVID", "Normal"], positive=0)
    assert rec["metrics"]["average"] == "binary (positive class: COVID)"
    assert rec["metrics"]["f1"] == pytest.approx(m0["f1"]) and rec["metrics"]["aupr"] == pytest.approx(m0["aupr"])
    assert rec["intervals"]["f1"]["value"] == pytest.approx(m0["f1"])
    assert "already" in rescore(tmp_path / "run")                   # a second call changes nothing

def test_label_one_and_tampered_runs(tmp_path):
    fake_run(tmp_path / "one", positive_class="Normal")
    assert "already" in rescore(tmp_path / "one")
    fake_run(tmp_path / "bad")
    rec = json.loads((tmp_path / "bad" / "metrics.json").read_text()); rec["metrics"]["f1"] = 0.5
    (tmp_path / "bad" / "metrics.json").write_text(json.dumps(rec))
    with pytest.raises(SystemExit, match="do not come out again"): rescore(tmp_path / "bad")
