"""One test per notebook: run the notebook's own tests (cells marked slow, gpu or notest are skipped)."""
import subprocess

import pytest

from conftest import ROOT, tool

NOTEBOOKS = sorted(p.name for p in (ROOT / "nbs").glob("*.ipynb"))

def test_every_module_has_a_notebook():
    assert {"00_config.ipynb", "index.ipynb"} <= set(NOTEBOOKS)

@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook(name):
    r = subprocess.run([tool("nbdev-test"), "--do-print", f"nbs/{name}"], cwd=ROOT, capture_output=True, text=True,
                       timeout=1200)
    assert r.returncode == 0, f"{name} failed:\n{r.stdout[-4000:]}\n{r.stderr[-8000:]}"
