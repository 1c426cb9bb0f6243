"""A real one-node Slurm cluster for the tests: `from slurm_cluster import slurm_cluster`, then ask for the fixture.

It runs `tools/slurm_local.sh up` in a temporary folder (needs root and the Debian packages slurmctld slurmd
slurm-client munge), exports SLURM_CONF for the session, and stops the daemons at the end. Without root or the
packages the tests using it skip, unless DCAT_REQUIRE_SLURM=1 (as in CI), where they fail instead.
"""
import os, shlex, shutil, subprocess, tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

try: from conftest import ROOT
except ImportError: ROOT = Path(__file__).resolve().parent.parent

SCRIPT = ROOT / "tools" / "slurm_local.sh"
NEEDED = ("slurmctld", "slurmd", "munged", "sbatch", "sinfo", "squeue")

@dataclass(frozen=True)
class SlurmCluster:
    conf: Path              # its slurm.conf (also in os.environ["SLURM_CONF"] while the session runs)
    partition: str          # the one (default) partition
    dir: Path               # all its state; daemon logs in dir/"log"

def _unavailable() -> str | None:
    "Why a local cluster cannot be started here, or None."
    if os.geteuid() != 0: return "a local Slurm cluster needs root"
    missing = [c for c in NEEDED if shutil.which(c) is None]
    if missing: return f"{', '.join(missing)} not found (apt-get install slurmctld slurmd slurm-client munge)"
    return None

# Each test module importing the fixture gets its own copy of it; they share the one cluster started first.
_shared: dict = {}

@pytest.fixture(scope="session")
def slurm_cluster():
    "The session's local Slurm cluster, started on first use."
    if "cluster" in _shared:
        yield _shared["cluster"]; return
    why = _unavailable()
    if why:
        if os.environ.get("DCAT_REQUIRE_SLURM") == "1": pytest.fail(f"DCAT_REQUIRE_SLURM=1 but {why}")
        pytest.skip(why)
    d = Path(tempfile.mkdtemp(prefix="dcat-slurm-"))
    r = subprocess.run(["bash", str(SCRIPT), "up", str(d)], capture_output=True, text=True, timeout=120)
    lines = r.stdout.strip().splitlines()
    if r.returncode != 0 or not lines or not lines[-1].startswith("export "):
        subprocess.run(["bash", str(SCRIPT), "down", str(d)], capture_output=True, timeout=120)
        pytest.fail(f"tools/slurm_local.sh up {d} failed (rc {r.returncode}):\n{r.stdout}{r.stderr}")
    # The last line is `export NAME=VALUE ...`: set those for this process and the jobs it submits.
    env = dict(w.split("=", 1) for w in shlex.split(lines[-1])[1:])
    # Jobs unpickle a function by importing its module: put tests/ (test modules, this one) on their path too.
    here = str(Path(__file__).resolve().parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in [here, os.environ.get("PYTHONPATH")] if p)
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    _shared["cluster"] = c = SlurmCluster(conf=Path(env["SLURM_CONF"]), partition="debug", dir=d)
    try: yield c
    finally:
        _shared.pop("cluster", None)
        for k, v in saved.items():
            if v is None: os.environ.pop(k, None)
            else: os.environ[k] = v
        r = subprocess.run(["bash", str(SCRIPT), "down", str(d)], capture_output=True, text=True, timeout=120)
        if r.returncode == 0: shutil.rmtree(d, ignore_errors=True)
