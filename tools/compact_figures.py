"""Re-encode committed PNG figures with `dcat.plots.compact_png` (256-colour palette, dithered, then recompressed by
oxipng): the figures a run saved before `save_figure` compacted them, and the figures in executed lessons (`image/png`
outputs of notebooks, which Jupyter's inline backend writes at full size; `make lessons` runs this after executing
them). Already paletted images are only recompressed, their pixels unchanged.

    python tools/compact_figures.py reports          # every PNG under reports/
    python tools/compact_figures.py nbs/*.ipynb      # the lessons' figures
"""
import base64, json, sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from dcat.config import atomic_write
from dcat.plots import compact_png

def compact_notebook(path: Path) -> tuple[int, int, int]:
    "Re-encode the `image/png` outputs of one notebook in place: (figures changed, bytes before, bytes after)."
    nb, n, before, after = json.loads(path.read_text()), 0, 0, 0
    for c in nb["cells"]:
        for o in c.get("outputs", []):
            d = o.get("data", {})
            if "image/png" not in d: continue
            raw = base64.b64decode("".join(d["image/png"]))
            small = compact_png(raw); before, after = before + len(raw), after + len(small)
            if small != raw: d["image/png"], n = base64.b64encode(small).decode() + "\n", n + 1
    if n:
        with atomic_write(path, "w") as f: f.write(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
    return n, before, after

def main(paths):
    before = after = n = 0
    for nbp in [Path(p) for p in paths if p.endswith(".ipynb")]:
        k, b, a = compact_notebook(nbp); n, before, after = n + k, before + b, after + a
    for root in [Path(p) for p in paths if not p.endswith(".ipynb")]:
        for p in sorted(root.rglob("*.png") if root.is_dir() else [root]):
            data = p.read_bytes(); small = compact_png(data)
            before, after = before + len(data), after + len(small)
            if small != data:
                with atomic_write(p, "wb") as f: f.write(small)
                n += 1
    print(f"{n} figures re-encoded; {before / 1e6:.1f} MB -> {after / 1e6:.1f} MB")

if __name__ == "__main__": main(sys.argv[1:] or ["reports"])
