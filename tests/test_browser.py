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

@pytest.mark.parametrize("html", COMMITTED)
def test_committed_report_in_browser(html):
    need_chromium()
    check_report(ROOT / html)
