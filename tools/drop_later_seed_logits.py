"""Drop every MC sample's logits (`mc_logits_*`) and the figures' arrays (`fig_*`) from the `predictions.npz` of runs
that are not the first seed of their arm (`dcat.study.lower_seeds`), as runs trained since write them
(`dcat.runs.save_predictions(mc_logits=False)`, no figures): a later seed's page and the statistics across seeds read
its per-image MC means, entropies and mutual information, not the samples, which were most of its file, and its page
draws no figure. The other arrays are kept as they are, bit for bit (checked before the file is replaced).

    python tools/drop_later_seed_logits.py reports [--dry-run]
"""
import argparse, sys, zipfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from dcat.config import atomic_write
from dcat.study import lower_seeds

def drop(path: Path, dry_run: bool = False) -> int:
    "Bytes saved by dropping `path`'s MC-sample logits and figures' arrays (0 for a first seed, or with none to drop)."
    if not lower_seeds(path.parent): return 0
    with np.load(path, allow_pickle=False) as z: arrays = {k: z[k] for k in z.files}
    gone = [k for k in arrays if k.startswith(("mc_logits_", "fig_"))]
    if not gone: return 0
    kept = {k: v for k, v in arrays.items() if k not in gone}
    if dry_run:
        with zipfile.ZipFile(path) as z: return sum(z.getinfo(f"{k}.npy").compress_size for k in gone)
    before = path.stat().st_size
    with atomic_write(path, "wb") as f: np.savez_compressed(f, **kept)
    with np.load(path, allow_pickle=False) as z:
        if sorted(z.files) != sorted(kept) or any(not np.array_equal(z[k], kept[k]) for k in kept):
            raise SystemExit(f"{path}: the rewritten file differs from what it kept")
    return before - path.stat().st_size

if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folders", nargs="+", type=Path)
    ap.add_argument("--dry-run", action="store_true")
    a = ap.parse_args()
    total = 0
    for folder in a.folders:
        for p in sorted(folder.rglob("seed-*/predictions.npz")):
            if any(part.startswith(".") for part in p.parts): continue
            if saved := drop(p, a.dry_run): print(f"{p}: {saved / 1e6:.2f} MB{' would be' if a.dry_run else ''} saved")
            total += saved
    print(f"{total / 1e6:.2f} MB {'to save' if a.dry_run else 'saved'}")
