"""One test per notebook: each notebook's own tests (cells marked slow, gpu or notest are skipped). The notebooks run in
one `nbdev-test` call with two workers (each notebook in its own kernel), so the two cores share the ~20 of them;
each notebook's test then reports its own result and, when it failed, that notebook's part of the output."""
import os, re, subprocess

import pytest

from conftest import ROOT, tool

NOTEBOOKS = sorted(p.name for p in (ROOT / "nbs").glob("*.ipynb"))

def test_every_module_has_a_notebook():
    assert {"00_config.ipynb", "index.ipynb"} <= set(NOTEBOOKS)

@pytest.fixture(scope="module")
def nbdev_test():
    "Run every notebook's tests once: `(return code, output, names of the notebooks that failed)`."
    one = {k: "1" for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}   # two kernels on two cores: one thread each (the lessons
    r = subprocess.run([tool("nbdev-test"), "--n-workers", "2"], cwd=ROOT,  # leave threads to the machine); nbs/, as pyproject says
                       capture_output=True, text=True, timeout=2400, env={**os.environ, **one})
    out = r.stdout + r.stderr
    tail = out.split("nbdev Tests Failed On The Following Notebooks:")[-1] if r.returncode else ""
    return r.returncode, out, set(re.findall(r"([\w.-]+\.ipynb)", tail))

@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook(name, nbdev_test):
    rc, out, failed = nbdev_test
    assert rc == 0 or failed, f"nbdev-test failed without naming a notebook:\n{out[-8000:]}"
    if name in failed:
        at = out.find(f"nbs/{name}:")                                    # "<Error> in <path>/nbs/<name>:" opens its part
        pytest.fail(f"{name} failed:\n{out[max(0, at - 200):at + 6000] if at >= 0 else out[-8000:]}")
