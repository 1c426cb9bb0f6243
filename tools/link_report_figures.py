"""One-off migration of report pages rendered before figures were linked (nbconvert's lab page, each figure embedded
as base64 beside the same figure saved as figures/<name>.png): replace every embedded figure by a link to its PNG.

The embedded image is the notebook's inline render of the figure (about 100 dpi), the PNG the saved file (150 dpi):
the two are the same figure at two resolutions, so each embedded image is matched to the PNG that, resized to its
size, differs least from it (both box-filtered to 160 px wide, mean absolute difference per RGB channel, 0-255; aspect
ratios within 3 %), each PNG used once. An image stays embedded unless its best match is within `--max-diff` and
differs at most half as much as the runner-up. The link keeps the embedded image's displayed width, so
the page looks as before with sharper figures. Pages drawn from run files since (`dcat render`) link their figures
already; this is only for runs whose files predate that (schema 1) and cannot be drawn again without retraining.
With `--lean-head`, the page's head (nbconvert's lab stylesheet, about 300 KB, and its script loaders) is replaced by
the small stylesheet new pages use (`dcat.study._PAGE_CSS`); the body is kept as it is.

    python tools/link_report_figures.py reports/*/*/seed-*/report.html [--dry-run]
"""
import argparse, base64, html, io, re, sys
from pathlib import Path

import numpy as np
from PIL import Image

IMG = re.compile(r'<img\s+([^>]*?)src="data:image/png;base64,([A-Za-z0-9+/=\s]+)"([^>]*)>')

def _rgb(im: Image.Image) -> np.ndarray:
    return np.asarray(im.convert("RGB"), dtype=np.float32)

SMALL = 160   # both images compared at this width: thin lines drawn at two dpi differ, the figures do not

def match(embedded: Image.Image, files: dict[str, Image.Image], used: set) -> tuple[str | None, float, float]:
    """The PNG (name) that best matches `embedded`, its mean absolute difference and the runner-up's (both compared
    at `SMALL` px wide, box-filtered)."""
    w, h = embedded.size
    size = (SMALL, max(1, round(SMALL * h / w)))
    target, scores = _rgb(embedded.resize(size, Image.BOX)), []
    for name, im in files.items():
        if name in used or abs(im.size[0] / im.size[1] - w / h) > 0.03 * (w / h): continue
        scores.append((float(np.abs(_rgb(im.resize(size, Image.BOX)) - target).mean()), name))
    scores.sort()
    if not scores: return None, float("inf"), float("inf")
    return scores[0][1], scores[0][0], scores[1][0] if len(scores) > 1 else float("inf")

def lean_head(text: str) -> str:
    "The page with its head replaced by new pages' small stylesheet (title from the first heading); the body unchanged."
    from dcat.study import _PAGE_CSS
    i, j = text.find("<head>"), text.find("</head>")
    if i < 0 or j < 0: return text
    h1 = re.search(r"<h1[^>]*>(.*?)</h1>", text, re.S)
    title = html.escape(re.sub(r"<[^>]+>|¶", "", h1[1]).strip()) if h1 else "dcat report"
    head = (f'<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f'<title>{title}</title>\n<style>{_PAGE_CSS}</style>\n')
    return text[:i] + head + text[j:]

def link_page(page: Path, max_diff: float, dry: bool, lean: bool = False) -> tuple[int, int, int]:
    "Rewrite one page; (figures linked, left embedded, bytes saved)."
    text = page.read_text(encoding="utf-8")
    figs = {p.name: Image.open(p) for p in sorted((page.parent / "figures").glob("*.png"))}
    used, linked, kept = set(), 0, 0
    def repl(m):
        nonlocal linked, kept
        emb = Image.open(io.BytesIO(base64.b64decode(m[2])))
        name, d, runner_up = match(emb, figs, used)
        if name is None or d > max_diff or runner_up < 2 * d:
            kept += 1
            print(f"  {page}: an embedded {emb.size} image kept (best match {name}, difference {d:.1f}, "
                  f"runner-up {runner_up:.1f})", file=sys.stderr)
            return m[0]
        used.add(name); linked += 1
        alt = re.search(r'alt="([^"]*)"', m[1] + m[3])
        alt = alt[1] if alt and "No description" not in alt[1] else Path(name).stem.replace("_", " ")
        return f'<img src="figures/{html.escape(name)}" width="{emb.size[0]}" alt="{html.escape(alt)}">'
    new = IMG.sub(repl, text)
    if lean: new = lean_head(new)
    if not dry and new != text:
        tmp = page.with_name(page.name + ".tmp"); tmp.write_text(new, encoding="utf-8"); tmp.replace(page)
    return linked, kept, len(text.encode()) - len(new.encode())

if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("pages", nargs="+"); ap.add_argument("--max-diff", type=float, default=12.0)
    ap.add_argument("--dry-run", action="store_true"); ap.add_argument("--lean-head", action="store_true")
    a = ap.parse_args()
    total = 0
    for p in map(Path, a.pages):
        n, k, saved = link_page(p, a.max_diff, a.dry_run, a.lean_head)
        total += saved
        print(f"{p}: {n} figures linked, {k} kept embedded, {saved:,} bytes saved")
    print(f"{total:,} bytes saved in all")
