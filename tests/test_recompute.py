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
        "epochs": 1, "max_train": 96, "bootstrap_resamples": 50, "batch_size": 32, "embedding": "none", "ood_set": "ood.npz",
        "near_ood_set": "near/square", "near_ood_class": "square", "near_ood_exclude": "near/seen.tsv"}

@pytest.fixture(scope="module")
def run(tmp_path_factory):
    from dcat.study import run_one
    d = tmp_path_factory.mktemp("recompute")
    rng = np.random.default_rng(0)
    np.savez(d / "ood.npz", **{f"{s}_{k}": rng.integers(0, 256, (40, 28, 28), dtype=np.uint8) if k == "images"
                               else np.zeros((40, 1), int) for s in ("train", "val", "test") for k in ("images", "labels")})
    from PIL import Image
    (d / "near" / "square").mkdir(parents=True)
    for i in range(25): Image.fromarray(rng.integers(0, 256, (40, 40), dtype=np.uint8)).save(d / "near" / "square" / f"s{i}.png")
    (d / "near" / "seen.tsv").write_text("file\tnote\nsquare/s3.png\tleft out\n")
    cfg = check_settings({**load_settings("synthetic", overrides=TINY), "data_dir": str(d), "reports_dir": str(d),
                          "checkpoints_dir": str(d / "ckpt")})
    env, threads = dict(os.environ), torch.get_num_threads()
    try:
        with pytest.warns(UserWarning, match="no pretrained weights"): run_one(cfg, d, full=True)   # a first seed: every MC sample kept
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

def test_mc_samples(run, tmp_path):
    "An arm's first seed keeps every MC sample's logits: temperature-scaled MC dropout and MC energy are recomputed from its files."
    from dcat.runs import read_run
    from dcat.uncertainty import method_samples, mutual_information, paired_method_tests, predictive_entropy
    rec, f = run
    import shutil
    d = tmp_path / "seed-0"; d.mkdir()
    np.savez(d / "predictions.npz", **f); (d / "metrics.json").write_text(json.dumps(rec))
    files = read_run(d)
    test, cal, ood = files.mc("test"), files.mc("cal"), files.mc("ood")
    assert np.abs(test.mean_probs - f["p_test"]).max() < 1e-6
    assert np.abs(predictive_entropy(test.probs) - f["entropy"]).max() < 1e-5
    assert np.abs(mutual_information(ood.probs) - f["mutual_information_ood"]).max() < 1e-5
    c = rec["uncertainty"]["calibration"]
    t_mc = fit_temperature(cal.logits, cal.labels)
    assert abs(t_mc - c["temperature_mc"]) < 1e-4 * c["temperature_mc"]
    assert abs(expected_calibration_error(test.labels, apply_temperature(test.logits, t_mc).mean(0)) - c["mc_scaled"]["ece"]) < 1e-4
    mc = f"mc_{test.mc_dropout}"
    e_in, e_out = ood_scores(test.probs, test.logits)["energy"], ood_scores(ood.probs, ood.logits)["energy"]
    assert abs(ood_metrics(e_in, e_out, 10)["auroc"]["value"] - rec["ood"]["methods"][mc]["energy"]["auroc"]["value"]) < 1e-6
    um = rec["uncertainty_methods"]
    again = paired_method_tests(method_samples(cal, test), test.labels, um["paired_reference"])
    for m, by in um["paired"].items():
        for k in ("nll", "brier"): assert abs(again[m][k]["diff"] - by[k]["diff"]) < 1e-6 and abs(again[m][k]["p"] - by[k]["p"]) < 1e-4
    from dcat.stats import debiased_calibration_error
    assert abs(debiased_calibration_error(test.labels, test.mean_probs) - um["methods"][mc]["ce_debiased"]["value"]) < 1e-6

def test_feature_detectors(run):
    "The feature-space detectors' scores are in the files: their OOD AUROC and the 95 % thresholds are recomputed from them."
    from dcat.shift import FEATURE_DETECTORS
    rec, f = run
    for name in FEATURE_DETECTORS:
        auroc = ood_metrics(f[f"feat_{name}_test"], f[f"feat_{name}_ood"], 10)["auroc"]["value"]
        assert abs(auroc - rec["ood"]["methods"]["features"][name]["auroc"]["value"]) < 1e-6, name
        assert abs(np.quantile(f[f"feat_{name}_cal"].astype(np.float64), 0.95) - rec["detectors"]["thresholds_95"][name]) < 1e-4 * (1 + abs(rec["detectors"]["thresholds_95"][name])), name

def test_near_ood(run):
    "The near-OOD images' scores are in the files: their AUROCs and the accuracy on their class are recomputed from them."
    rec, f = run
    near = rec["near_ood"]
    assert near["n_out"] == 24 == len(f["p_near"])                     # one of the 25 left out by the TSV
    mc = next(m for m in near["methods"] if m.startswith("mc_"))
    assert abs(ood_metrics(f["mutual_information"], f["mutual_information_near"], 10)["auroc"]["value"]
               - near["methods"][mc]["mutual_information"]["auroc"]["value"]) < 1e-6
    s_in, s_out = ood_scores(f["p_test"]), ood_scores(f["p_near"])
    assert abs(ood_metrics(s_in["entropy"], s_out["entropy"], 10)["auroc"]["value"] - near["methods"][mc]["entropy"]["auroc"]["value"]) < 1e-6
    assert abs(ood_metrics(f["feat_mahalanobis_test"], f["feat_mahalanobis_near"], 10)["auroc"]["value"]
               - near["methods"]["features"]["mahalanobis"]["auroc"]["value"]) < 1e-6
    assert abs((f["p_near"].argmax(1) == 1).mean() - near["accuracy_on_class"]["near"]["value"]) < 1e-12
