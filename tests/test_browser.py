"""Every committed report in a real browser (tools/report_browser.py: headless Debian chromium via Playwright).
The short study of tests/test_study.py is checked the same way right after it renders."""
import os, shutil, sys
from pathlib import Path

import pytest

from conftest import ROOT

sys.path.insert(0, str(ROOT / "tools"))
from report_browser import check_report  # noqa: E402

def need_chromium():
    if shutil.which("chromium") is None:
        if os.environ.get("CI"): pytest.fail("chromium is not installed (.ci/run installs Debian's package)")
        pytest.skip("chromium is not installed (apt-get install chromium)")

COMMITTED = sorted(str(p.relative_to(ROOT)) for pat in ("reports/*/*/seed-*/report.html",       # <dataset>/<arm>/seed-k
                                                          "reports/*/*/*/seed-*/report.html")     # <variant>/<dataset>/<arm>/seed-k
                   for p in ROOT.glob(pat))

DEFAULT_STUDY = "reports/pneumoniamnist/dcat/seed-0/report.html"

@pytest.mark.parametrize("html", COMMITTED)
def test_committed_report_in_browser(html):
    """The default study's report is held to 10,000 px at 1280 px wide (the issue's target); other reports may carry
    more (a longer budget's training table, multi-class tables), up to 14,000: a flood of progress bars, the failure this
    bound exists for, took 26,000."""
    need_chromium()
    from dcat.study import lower_seeds                   # a later seed's page links its figures rather than draws them
    check_report(ROOT / html, max_height=10000 if html == DEFAULT_STUDY else 14000, figures=not lower_seeds((ROOT / html).parent),
                 written=drawable((ROOT / html).parent))

def drawable(folder: Path) -> bool:
    "The run's files can draw its page again (`dcat render`): then the page must read as written for its reader."
    from dcat.runs import read_run
    try: read_run(folder); return True
    except ValueError: return False

def test_every_committed_page_can_be_drawn_again():
    "Every committed run keeps the files its page is drawn from (`dcat render`, `make reports`): none awaits retraining."
    old = [h for h in COMMITTED if not drawable((ROOT / h).parent)]
    assert not old, f"pages whose runs cannot draw them again (retrain them): {old}"

def test_the_default_study_report_is_committed():
    assert DEFAULT_STUDY in COMMITTED, f"{DEFAULT_STUDY} is missing: the README's screenshot and numbers come from it"

@pytest.mark.parametrize("md", ["README.md", "reports/summary.md"])
def test_the_answer_is_on_the_first_screen(md, tmp_path):
    """The README and the summary as GitHub shows them (markdown-it-py, GitHub's stylesheet, 1280 px): the answer and
    the table of verdicts within the first 1,200 px, and every table within the column (none scrolls sideways)."""
    need_chromium()
    from report_browser import inspect_markdown
    info = inspect_markdown(ROOT / md, tmp_path / "page.html")
    answer = [top for text, top in info["h2"] if text == "The answer"]
    assert len(answer) == 1, f"{md}: {len(answer)} headings 'The answer'"
    assert answer[0] < 1200, f"{md}: 'The answer' starts at {answer[0]:.0f} px"
    verdicts = [top for head, top, _ in info["tables"] if "verdict" in head]
    assert verdicts and verdicts[0] < 1200, f"{md}: the verdict table starts at {verdicts[:1]} px (bound 1,200)"
    wide = [head for head, _, scrolls in info["tables"] if scrolls]
    assert not wide, f"{md}: tables wider than GitHub's column: {wide}"
