"""Add the Grad-CAM of named test images (the setting `gradcam_files`) to a finished classification run's files, from
its best checkpoint, for a run trained before that setting existed; `dcat render RUN` then draws them on its page.

It refuses unless the checkpoint, loaded with this code, reproduces what the run saved: the dropout-off test logits of
the named images (`det_logits_test`) to 1e-4. Only the figure arrays `fig_gradcam_files_*` are added to
`predictions.npz` (atomically); `metrics.json` and every number of the run stay as they are.

    python tools/gradcam_files.py reports/covid19_radiography/dcat/seed-0 CHECKPOINT.pt [--data-dir DIR] [--files F ...]
"""
import argparse, os, sys
from pathlib import Path

import numpy as np
import torch

from dcat.config import Settings, atomic_write, load_settings
from dcat.data import load_dataset
from dcat.loaders import normalize
from dcat.runs import read_run
from dcat.study import gradcam_file_arrays, gradcam_positions, model_for
from dcat.train import load_checkpoint

def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run"); ap.add_argument("checkpoint")
    ap.add_argument("--data-dir", default=os.environ.get("DCAT_DATA_DIR"))
    ap.add_argument("--files", nargs="*", help="paths in the data folder (default: the dataset section's gradcam_files)")
    a = ap.parse_args(argv)
    run = read_run(a.run)
    params = dict(run.record["params"])
    files = a.files or load_settings(params["dataset"]).get("gradcam_files")
    if not files: sys.exit(f"{params['dataset']}: no gradcam_files in its settings section; pass --files")
    cfg = Settings.of({**params, "gradcam_files": files, **({"data_dir": a.data_dir} if a.data_dir else {})})
    bundle = load_dataset(cfg, progress=False)
    pos = gradcam_positions(cfg, bundle)                       # a name that is no test image is refused here
    net = model_for(cfg, bundle)
    net.load_state_dict(load_checkpoint(a.checkpoint)["model"])
    net.eval()
    x = normalize(torch.stack([bundle.test.dataset[i][0] for i in pos]))
    with torch.no_grad(): logits = net(x).numpy()
    saved = run.arrays["det_logits_test"][pos]
    err = float(np.abs(logits - saved).max())
    if err > 1e-4: sys.exit(f"{a.checkpoint}: its test logits differ from the run's by {err:.2e}: not this run's weights (or code)")
    arrays = {k: v for k, v in run.arrays.items()}
    arrays.update({f"fig_{k}": v for k, v in gradcam_file_arrays(net, x, pos, files).items()})
    with atomic_write(Path(a.run) / "predictions.npz", "wb") as f: np.savez_compressed(f, **arrays)
    print(f"{a.run}: Grad-CAM of {len(pos)} named test images added (the checkpoint reproduces the saved logits to {err:.1e})")

if __name__ == "__main__":
    main()
