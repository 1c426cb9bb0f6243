"""Re-encode committed PNG figures with `dcat.plots.compact_png` (256-colour palette, dithered): the figures a run saved
before `save_figure` compacted them. Already paletted files are left as they are.

    python tools/compact_figures.py reports          # every PNG under reports/
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from dcat.config import atomic_write
from dcat.plots import compact_png

def main(paths):
    before = after = n = 0
    for root in map(Path, paths):
        for p in sorted(root.rglob("*.png") if root.is_dir() else [root]):
            data = p.read_bytes(); small = compact_png(data)
            before, after = before + len(data), after + len(small)
            if small != data:
                with atomic_write(p, "wb") as f: f.write(small)
                n += 1
    print(f"{n} figures re-encoded; {before / 1e6:.1f} MB -> {after / 1e6:.1f} MB")

if __name__ == "__main__": main(sys.argv[1:] or ["reports"])
