import os, shutil, sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent

def tool(name: str) -> str:
    "A console script of the environment running pytest."
    p = BIN / name
    return str(p) if p.exists() else (shutil.which(name) or name)

def real_data_dir() -> Path | None:
    "The directory holding pneumoniamnist.npz ($DCAT_DATA_DIR, ../shared/data or data/), else None."
    for d in [os.environ.get("DCAT_DATA_DIR"), ROOT.parent / "shared" / "data", ROOT / "data"]:
        if d and (Path(d) / "pneumoniamnist.npz").is_file(): return Path(d)
    return None

@pytest.fixture
def data_dir() -> Path:
    d = real_data_dir()
    if d is None:
        if os.environ.get("DCAT_REQUIRE_DATA"): pytest.fail("pneumoniamnist.npz not found; set DCAT_DATA_DIR")
        pytest.skip("real PneumoniaMNIST not available (set DCAT_DATA_DIR)")
    return d
