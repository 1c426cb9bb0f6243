"""Recompute a finished classification run's headline metrics and their intervals for its stated positive class, from
its files alone (`metrics.json` and `predictions.npz`; no checkpoint).

Runs evaluated before the `positive_class` setting was honoured (`dcat.stats.positive_index`) took label 1 as the
positive class: for COVID-19 Radiography (classes COVID, Normal) their precision, recall, F1 and AUPR are Normal's.
The AUC and the accuracy do not depend on it. This tool first recomputes the stored figures with label 1 and refuses
unless they come out as stored, bit for bit (the files hold everything the evaluation used), then writes them for the
positive class, atomically.

    python tools/rescore_positive.py reports/covid19_radiography/dcat/seed-0 [...]
"""
import argparse, json, sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from dcat.config import atomic_write_text, to_jsonable
from dcat.stats import headline_figures, positive_index

def _figures(rec: dict, z, positive: int) -> tuple[dict, dict]:
    "The `metrics` and `intervals` blocks as `dcat.study` computes them (`headline_figures`), for label `positive`, JSON-ready."
    p = rec["params"]
    figs = headline_figures(z["y_test"], z["p_test"], z["entropy"], rec["data"]["classes"], positive,
                            int(p.get("bootstrap_resamples") or 2000), int(p["seed"]))
    return tuple(json.loads(json.dumps(to_jsonable(f))) for f in figs)

def rescore(folder: Path) -> str:
    "Rewrite `folder`'s metrics and intervals for its positive class; what was done, in words."
    rec = json.loads((folder / "metrics.json").read_text())
    classes = rec["data"]["classes"]
    if len(classes) != 2: return f"{folder}: {len(classes)} classes, nothing to do"
    pos = positive_index(classes, rec["params"].get("positive_class"))
    if rec["metrics"].get("average") == f"binary (positive class: {classes[pos]})": return f"{folder}: already for {classes[pos]}"
    with np.load(folder / "predictions.npz") as z:
        z = {k: z[k] for k in ("y_test", "p_test", "entropy")}
    stored = {"metrics": rec["metrics"], "intervals": rec["intervals"]}
    again = dict(zip(("metrics", "intervals"), _figures(rec, z, 1)))
    if again != json.loads(json.dumps(stored)):
        raise SystemExit(f"{folder}: the stored figures do not come out again from predictions.npz; not rewritten")
    rec["metrics"], rec["intervals"] = _figures(rec, z, pos)
    atomic_write_text(folder / "metrics.json", json.dumps(rec, indent=2, sort_keys=True, allow_nan=False) + "\n")
    return (f"{folder}: positive class {classes[1]} -> {classes[pos]}: F1 {stored['metrics']['f1']:.4f} -> {rec['metrics']['f1']:.4f}, "
            f"AUPR {stored['metrics']['aupr']:.4f} -> {rec['metrics']['aupr']:.4f} (AUC {rec['metrics']['auc']:.4f} unchanged)")

if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folders", nargs="+", type=Path)
    for f in ap.parse_args().folders: print(rescore(f))
