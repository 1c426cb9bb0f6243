"""Regenerate README.md from nbs/index.ipynb (nbdev-readme needs Quarto, which we do not use).

    python tools/make_readme.py          # write README.md
    python tools/make_readme.py --check  # exit 1 if README.md is out of date
"""
import argparse, re, sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
HEADER = "<!-- Generated from nbs/index.ipynb by tools/make_readme.py: edit the notebook, then run `make readme`. -->\n\n"
VERDICT = "<!-- verdict -->"   # in a markdown cell: replaced by the answer section of reports/summary.md

def verdict_block(summary: Path = ROOT / "reports" / "summary.md") -> str:
    "The body of the summary's first section (`## The answer`), so the README's answer is the summary's, never typed."
    lines = summary.read_text().splitlines()
    try: start = lines.index("## The answer") + 1
    except ValueError: raise SystemExit(f"{summary}: no '## The answer' section; run `dcat summary`") from None
    end = next((i for i in range(start, len(lines)) if lines[i].startswith("## ")), len(lines))
    return "\n".join(lines[start:end]).strip()

TABLE = re.compile(r"<!-- summary-table: (?P<section>[^|]+?) \| (?P<header>.+?) -->")   # a table of reports/summary.md, by its section and first column

def summary_table(section: str, header: str, summary: Path = ROOT / "reports" / "summary.md") -> str:
    "The first table under `## <section>` of the summary whose header row starts `| <header>`: a README table is the summary's, never typed."
    lines = summary.read_text().splitlines()
    try: start = lines.index(f"## {section}") + 1
    except ValueError: raise SystemExit(f"{summary}: no '## {section}' section; run `dcat summary`") from None
    end = next((i for i in range(start, len(lines)) if lines[i].startswith("## ")), len(lines))
    first = next((i for i in range(start, end) if lines[i].startswith(f"| {header}")), None)
    if first is None: raise SystemExit(f"{summary}: no table starting '| {header}' under '## {section}'")
    last = next((i for i in range(first, end) if not lines[i].startswith("|")), end)
    return "\n".join(lines[first:last])

def render(nb_path: Path = ROOT / "nbs" / "index.ipynb") -> str:
    "README text: the notebook's markdown cells (the answer copied from the summary), code cells as python blocks, nbdev directives dropped."
    nb = nbformat.read(nb_path, as_version=4)
    parts = []
    for c in nb.cells:
        src = "\n".join(l for l in c.source.splitlines() if not l.startswith("#|")).strip()
        if not src: continue
        if c.cell_type == "markdown" and VERDICT in src: src = src.replace(VERDICT, verdict_block())
        if c.cell_type == "markdown": src = TABLE.sub(lambda m: summary_table(m["section"].strip(), m["header"].strip()), src)
        parts.append(src if c.cell_type == "markdown" else f"```python\n{src}\n```")
    return HEADER + "\n\n".join(parts) + "\n"

def main() -> int:
    ap = argparse.ArgumentParser(); ap.add_argument("--check", action="store_true"); a = ap.parse_args()
    text, readme = render(), ROOT / "README.md"
    if a.check:
        if not readme.exists() or readme.read_text() != text:
            print("README.md is out of date with nbs/index.ipynb: run `make readme`", file=sys.stderr); return 1
        print("README.md is in sync with nbs/index.ipynb"); return 0
    tmp = readme.with_suffix(".md.tmp"); tmp.write_text(text); tmp.replace(readme)
    print(f"wrote {readme}"); return 0

if __name__ == "__main__":
    sys.exit(main())
