"""A run's numbers are a function of its files: a small study's headline, calibration, OOD and conformal figures in
`metrics.json` are recomputed here from its `predictions.npz` alone (no model, no checkpoint) and agree with it."""
import json, os

import numpy as np
import torch
import pytest

from dcat.config import check_settings, load_settings
from dcat.runs import PREDICTIONS_SCHEMA
from dcat.shift import ood_scores
from dcat.stats import auc, expected_calibration_error, ood_metrics
from dcat.uncertainty import apply_temperature, conformal_summary, fit_temperature

TINY = {"mc_samples": 4, "backbone_a": "efficientnet_b0", "backbone_b": "resnet18", "fusion_dim": 16, "image_size": 32,
        "epochs": 1, "max_train": 96, "bootstrap_resamples": 50, "batch_size": 32, "embedding": "none", "ood_set": "ood.npz"}

@pytest.fixture(scope="module")
def run(tmp_path_factory):
    from dcat.study import run_one
    d = tmp_path_factory.mktemp("recompute")
    rng = np.random.default_rng(0)
    np.savez(d / "ood.npz", **{f"{s}_{k}": rng.integers(0, 256, (40, 28, 28), dtype=np.uint8) if k == "images"
                               else np.zeros((40, 1), int) for s in ("train", "val", "test") for k in ("images", "labels")})
    cfg = check_settings({**load_settings("synthetic", overrides=TINY), "data_dir": str(d), "reports_dir": str(d),
                          "checkpoints_dir": str(d / "ckpt")})
    env, threads = dict(os.environ), torch.get_num_threads()
    try:
        with pytest.warns(UserWarning, match="no pretrained weights"): run_one(cfg, d, full=False)
    finally:                     # the run sets this process's threads and their variables: later tests start clean
        os.environ.clear(); os.environ.update(env); torch.set_num_threads(threads)
    with np.load(d / "predictions.npz") as z: files = {k: z[k] for k in z.files}
    return json.loads((d / "metrics.json").read_text()), files

def test_headline_and_calibration(run):
    rec, f = run
    assert str(f["schema"]) == PREDICTIONS_SCHEMA
    y, p = f["y_test"], f["p_test"].astype(np.float64)
    assert abs(auc(y, p) - rec["metrics"]["auc"]) < 1e-6
    assert abs((p.argmax(1) == y).mean() - rec["metrics"]["accuracy"]) < 1e-12
    cal = rec["uncertainty"]["calibration"]
    assert abs(expected_calibration_error(y, p) - cal["mc"]["ece"]) < 1e-6
    det = apply_temperature(f["det_logits_test"], 1.0)
    assert abs(expected_calibration_error(y, det) - cal["deterministic"]["ece"]) < 1e-6
    t = fit_temperature(f["det_logits_cal"], f["y_cal"])                        # temperature scaling from the files
    assert abs(t - cal["temperature_deterministic"]) < 1e-4 * cal["temperature_deterministic"]
    assert abs(expected_calibration_error(y, apply_temperature(f["det_logits_test"], t)) - cal["deterministic_scaled"]["ece"]) < 1e-4

def test_conformal(run):
    rec, f = run
    mine = conformal_summary(f["p_cal"].astype(np.float64), f["y_cal"], f["p_test"].astype(np.float64), f["y_test"])
    for method, by_alpha in rec["uncertainty"]["conformal"].items():
        for a, row in by_alpha.items():
            for k in ("coverage", "mean_set_size", "empty", "singleton", "multi"):
                assert abs(mine[method][a][k] - row[k]) < 1e-12, (method, a, k)

def test_ood(run):
    rec, f = run
    methods = rec["ood"]["methods"]
    mc = next(m for m in methods if m.startswith("mc_"))
    s_in, s_out = ood_scores(f["p_test"]), ood_scores(f["p_ood"])
    for score in ("entropy", "max_prob"):
        assert abs(ood_metrics(s_in[score], s_out[score], 10)["auroc"]["value"] - methods[mc][score]["auroc"]["value"]) < 1e-6
    mi = ood_metrics(f["mutual_information"], f["mutual_information_ood"], 10)["auroc"]["value"]
    assert abs(mi - methods[mc]["mutual_information"]["auroc"]["value"]) < 1e-6
    d_in, d_out = ood_scores(apply_temperature(f["det_logits_test"], 1.0), f["det_logits_test"]), \
                  ood_scores(apply_temperature(f["det_logits_ood"], 1.0), f["det_logits_ood"])
    for score in ("entropy", "energy"):
        assert abs(ood_metrics(d_in[score], d_out[score], 10)["auroc"]["value"] - methods["softmax"][score]["auroc"]["value"]) < 1e-6
