"""Open a rendered report in a real browser (Debian's `chromium`, driven by Playwright's Python API) and check what a
reviewer sees: no input code, every image decoded, no traceback, no progress bars, log lines or warnings, a bounded
page height, and the results block on the first screen."""
import argparse, os, re, shutil, sys
from pathlib import Path

VIEWPORT = {"width": 1280, "height": 900}
# what a page written for its reader never shows: a metric key (`coverage_mondrian@0.1_class0`, `knn_flagged`), a NaN cell, a
# placeholder for a run that is not there, an exception's name
WRITTEN = [r"\w@[\d.]", r"_class\d", r"\w_flagged\b", r"\bNaN\b|\bnan\b", r"no report .{0,40}\byet\b", r"\b[A-Z]\w*(Error|Exception)\b"]
NOISE = [r"\d+it/s", r"s/it\b", r"\d+%\|", r"Warning:", r"WARNING", r"TqdmWarning", r"/tmp/", r"Traceback",
         r"UserWarning", r"DeprecationWarning", r"IProgress"]

def chromium() -> str:
    "Path of the system's chromium (Debian's package); FileNotFoundError when it is missing."
    p = shutil.which("chromium") or shutil.which("chromium-browser")
    if p is None: raise FileNotFoundError("chromium is not installed (apt-get install chromium; .ci/run does it)")
    return p

def inspect_report(html: Path, max_height: int = 12000, screenshot: Path | None = None) -> dict:
    "Load `html` at 1280 px wide and return what the checks need; optionally save the first screen as a PNG."
    from playwright.sync_api import sync_playwright
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium(), args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport=VIEWPORT)
        page.goto(Path(html).resolve().as_uri()); page.wait_for_load_state("load")
        info = {"height": page.evaluate("document.documentElement.scrollHeight"),
                "images": page.evaluate("Array.from(document.images).map(i => [i.alt || i.src.slice(0, 30), i.complete, i.naturalWidth, i.alt])"),
                "text": page.inner_text("body"),
                "inputs": page.evaluate("document.querySelectorAll('.jp-CodeCell .jp-InputArea, .jp-CodeCell .jp-InputPrompt, div.input_area, div.highlight.hl-ipython3').length"),
                "glance_y": page.evaluate("(() => { const h = Array.from(document.querySelectorAll('h2')).find(e => e.textContent.includes('Results at a glance')); return h ? h.getBoundingClientRect().top : null; })()")}
        if screenshot is not None: page.screenshot(path=str(screenshot))
        browser.close()
    return info

def check_report(html: Path, max_height: int = 12000, screenshot: Path | None = None, glance: bool = True,
                 figures: bool = True, written: bool = True) -> dict:
    """Assert what a reviewer must see (every template, classification and segmentation, has the results-at-a-glance
    block); `figures=False`: a later seed's page, whose figures are on its arm's first seed's page (it links there);
    `written=False` leaves out the checks of a page written for its reader (`WRITTEN`, alt text on every image, the
    commit that drew the page named), for a page drawn before them from files that cannot draw it again (a run to
    retrain)."""
    info = inspect_report(html, max_height, screenshot)
    assert info["inputs"] == 0, f"{html}: input code is shown"
    bad = [i for i in info["images"] if not i[1] or i[2] == 0]
    assert (info["images"] or not figures) and not bad, f"{html}: images not decoded: {bad}"
    if not figures: assert "/report.html" in html.read_text(), f"{html}: a later seed's page without a link to its figures"
    hits = [p for p in NOISE if re.search(p, info["text"])]
    assert not hits, f"{html}: log, progress or warning text in the page: {hits}"
    if written:
        raw = [m.group(0) for p in WRITTEN for m in [re.search(p, info["text"])] if m]
        assert not raw, f"{html}: text a reader should not see (raw metric keys, NaN, placeholders, exception names): {raw}"
        assert "drew this page" in info["text"], f"{html}: the page does not name the code that drew it (draw it again: dcat render)"
        unnamed = [i for i in info["images"] if not i[3] or "No description" in i[3]]
        assert not unnamed, f"{html}: images without alt text: {unnamed}"
    assert info["height"] < max_height, f"{html}: page is {info['height']} px tall at 1280 px (bound {max_height})"
    if glance:
        assert info["glance_y"] is not None and info["glance_y"] < VIEWPORT["height"], f"{html}: results block not on the first screen"
    return info

GITHUB_CSS = Path(__file__).resolve().parent.parent / "tests" / "assets" / "github-markdown-light.css"   # npm github-markdown-css 5.9.0, MIT

def markdown_page(md: Path, out: Path) -> Path:
    """`md` rendered as GitHub shows a Markdown file, offline: markdown-it-py (CommonMark with GitHub's tables and
    strikethrough, raw HTML kept) inside GitHub's stylesheet (github-markdown-css, light) at its column's 980 px."""
    from markdown_it import MarkdownIt
    body = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"]).render(Path(md).read_text())
    style = GITHUB_CSS.read_text() + "\n.markdown-body{box-sizing:border-box;min-width:200px;max-width:980px;margin:0 auto;padding:45px}"
    out.write_text(f'<!doctype html><html><head><meta charset="utf-8"><style>{style}</style></head>'
                   f'<body><article class="markdown-body">{body}</article></body></html>')
    return out

def inspect_markdown(md: Path, out: Path) -> dict:
    """Open `md` as GitHub would show it (`markdown_page`, written to `out`) at 1280 px: the page's height, each `h2`'s
    text and top, and each table's header row, top, and whether it is wider than the column (GitHub scrolls it)."""
    from playwright.sync_api import sync_playwright
    html = markdown_page(md, out)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium(), args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport=VIEWPORT)
        page.goto(html.resolve().as_uri()); page.wait_for_load_state("load")
        info = {"height": page.evaluate("document.documentElement.scrollHeight"),
                "h2": page.evaluate("Array.from(document.querySelectorAll('h2')).map(e => [e.textContent.trim(), e.getBoundingClientRect().top])"),
                "tables": page.evaluate("Array.from(document.querySelectorAll('table')).map(t => [t.rows[0].textContent.replace(/\\s+/g, ' ').trim(), "
                                        "t.getBoundingClientRect().top, t.scrollWidth > t.clientWidth + 1])")}
        browser.close()
    return info

if __name__ == "__main__":
    ap = argparse.ArgumentParser(description="Check rendered reports in headless chromium; optionally screenshot the first screen.")
    ap.add_argument("html", nargs="+"); ap.add_argument("--screenshot", help="PNG of the first report's first screen")
    a = ap.parse_args()
    for i, h in enumerate(a.html):
        info = check_report(Path(h), screenshot=Path(a.screenshot) if a.screenshot and i == 0 else None)
        print(f"{h}: ok, {info['height']} px tall, {len(info['images'])} images")
