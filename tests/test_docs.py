"""`make docs` builds every lesson: the mkdocs build of `mkdocs.yml` (mkdocs-jupyter, notebooks rendered as committed,
never executed) gives one page per notebook of nbs/ and per entry of the navigation, with every cell of the notebook
and every figure its outputs carry.

The build runs as `make docs` runs it (`mkdocs build --strict`: a warning, such as a navigation entry whose notebook
is gone, fails it), on a copy of the configuration that differs in two places only: the site goes to a temporary
folder, and mkdocs-jupyter's cache is off, so every notebook is really converted. About 15 s on two cores.
"""
import json, os, re, subprocess, sys

import pytest

from conftest import ROOT

NOTEBOOKS = sorted((ROOT / "nbs").glob("*.ipynb"))     # the lessons and the overview; nbs/studies/ holds templates

def nav_files(nav) -> list:
    "The files a mkdocs navigation names, in order (entries are 'file', {'title': 'file'} or {'title': [entries]})."
    out = []
    for e in nav or []:
        for v in (e.values() if isinstance(e, dict) else [e]):
            out += nav_files(v) if isinstance(v, list) else [v]
    return out

def jupyter_options(cfg: dict) -> dict:
    "The mkdocs-jupyter entry of `cfg['plugins']` (a dict the caller may change in place)."
    for i, p in enumerate(cfg.get("plugins") or []):
        if p == "mkdocs-jupyter": cfg["plugins"][i] = p = {"mkdocs-jupyter": {}}
        if isinstance(p, dict) and "mkdocs-jupyter" in p: return p["mkdocs-jupyter"]
    pytest.fail("mkdocs.yml: no mkdocs-jupyter plugin, so no lesson would become a page")

def page(site, name: str, cfg: dict):
    "The HTML page mkdocs writes for the source file `name` (nbs/-relative)."
    stem = name.rsplit(".", 1)[0]
    if not cfg.get("use_directory_urls", True) or stem == "index" or stem.endswith("/index"): return site / f"{stem}.html"
    return site / stem / "index.html"

@pytest.fixture(scope="module")
def built(tmp_path_factory):
    "(site folder, configuration) of one strict build of mkdocs.yml into a temporary folder."
    import mkdocs_jupyter, yaml        # in the dev extra: a missing docs tool fails the test, it does not skip it
    tmp = tmp_path_factory.mktemp("docs")
    cfg = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))
    opts = jupyter_options(cfg)
    assert opts.get("execute") is False, "mkdocs.yml: mkdocs-jupyter must render the committed outputs (execute: false)"
    opts["cache"] = False
    cfg.update(docs_dir=str(ROOT / cfg.get("docs_dir", "docs")), site_dir=str(tmp / "site"),
               hooks=[str(ROOT / h) for h in cfg.get("hooks", [])])
    (tmp / "mkdocs.yml").write_text(yaml.safe_dump(cfg, allow_unicode=True, sort_keys=False), encoding="utf-8")
    r = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(tmp / "mkdocs.yml")],  # not -q:
                       cwd=tmp, capture_output=True, text=True, timeout=600,      # it hides warnings from --strict
                       env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    warned = "\n".join(l for l in (r.stdout + r.stderr).splitlines() if not l.startswith("INFO"))
    assert r.returncode == 0, f"mkdocs build --strict failed (exit {r.returncode}):\n{warned[-4000:]}"
    return tmp / "site", cfg

def test_every_notebook_has_its_page_with_every_cell(built):
    site, cfg = built
    bad = []
    for nb in NOTEBOOKS:
        p = page(site, nb.name, cfg)
        if not p.is_file(): bad.append(f"nbs/{nb.name}: no page {p.relative_to(site)}"); continue
        html, cells = p.read_text(encoding="utf-8"), json.loads(nb.read_text(encoding="utf-8"))["cells"]
        missing = [c.get("id") for c in cells if f'id="cell-id={c.get("id")}"' not in html]
        images = sum("image/png" in o.get("data", {}) for c in cells for o in c.get("outputs", []))
        if missing: bad.append(f"nbs/{nb.name}: {len(missing)} of {len(cells)} cells missing from its page (ids {missing[:5]})")
        if html.count("<img") < images: bad.append(f"nbs/{nb.name}: {images} figures, {html.count('<img')} images on its page")
    assert not bad, "\n".join(bad)

def test_the_navigation_is_every_notebook_and_each_has_a_page(built):
    site, cfg = built
    named = [n for n in nav_files(cfg.get("nav")) if not n.startswith("reports/")]
    assert sorted(named) == [nb.name for nb in NOTEBOOKS], f"navigation {named} against nbs/ {[nb.name for nb in NOTEBOOKS]}"
    assert [n for n in named if not page(site, n, cfg).is_file()] == []

def test_make_docs_builds_strictly():
    recipe = re.search(r"^docs:.*\n((?:\t.*\n?)+)", (ROOT / "Makefile").read_text(encoding="utf-8"), re.M)
    build = re.search(r"mkdocs build .*", recipe.group(1) if recipe else "")
    assert build and "--strict" in build.group(0) and "-f mkdocs.yml" in build.group(0), \
        "Makefile: `make docs` should run `mkdocs build --strict -f mkdocs.yml`, the build this test checks"
    assert not re.search(r"\s(-q|--quiet)\b", build.group(0)), "Makefile: `mkdocs build -q` hides the warnings --strict counts"

def test_the_results_are_on_the_site_with_their_images(built):
    "The summary is a page whose images are on the site; the run index and every committed run's page are copied."
    site, cfg = built
    assert "reports/summary.md" in nav_files(cfg.get("nav"))
    summary = (site / "reports" / "summary.html").read_text(encoding="utf-8")
    images = re.findall(r'<img[^>]*src="([^"]+)"', summary)
    assert images and [s for s in images if not (site / "reports" / s).is_file()] == []
    pages = sorted(p.relative_to(ROOT) for p in (ROOT / "reports").glob("**/seed-*/report.html"))
    assert (site / "reports" / "index.html").is_file() and [p for p in pages if not (site / p).is_file()] == []

def test_the_overview_shows_the_answer_and_tables(built):
    "The overview page (nbs/index.ipynb) gets the summary's answer and the tables the README copies, not their markers."
    site, _ = built
    overview = (site / "index.html").read_text(encoding="utf-8")
    assert "<!-- verdict -->" not in overview and "summary-table:" not in overview
    assert overview.count("<table") >= 5 and "arm − DCAT" in overview and "<strong>equivalent</strong>" in overview
