"""mkdocs hook: the study's results join the lesson pages. `reports/summary.md` becomes a page (its figures beside it), and
`reports/index.html` with every run's `report.html` and figures are copied as they are, so the site's links and images
work. The files are added from the project's `reports/`, outside `docs_dir` (nbs/), at their own paths."""
from pathlib import Path

from mkdocs.structure.files import File

ROOT = Path(__file__).resolve().parents[1]
KINDS = (".md", ".html", ".png")

def on_files(files, config):
    reports = ROOT / "reports"
    for p in sorted(reports.rglob("*")):
        if p.is_file() and p.suffix in KINDS and not any(part.startswith(".") for part in p.relative_to(ROOT).parts):
            files.append(File(p.relative_to(ROOT).as_posix(), src_dir=str(ROOT), dest_dir=config["site_dir"],
                              use_directory_urls=config["use_directory_urls"]))
    return files

def on_page_content(html, page, config, files):
    "The overview (nbs/index.ipynb) gets the summary's answer and tables where the README gets them (tools/make_readme.py)."
    if page.file.src_uri != "index.ipynb": return html
    import sys, markdown
    sys.path.insert(0, str(ROOT / "tools"))
    import make_readme
    md = lambda text: markdown.markdown(text, extensions=["tables"])
    html = html.replace(make_readme.VERDICT, md(make_readme.verdict_block()))
    return make_readme.TABLE.sub(lambda m: md(make_readme.summary_table(m["section"].strip(), m["header"].strip())), html)
