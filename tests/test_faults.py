"""Runs that survive each other and the machine: a SIGKILL at every stage of a study, concurrent runs, a full disk,
a read-only reports folder. Generated data and a tiny model, so the whole file takes a few minutes on two cores.

A stage is reached deterministically through the test hook `DCAT_TEST_HOLD=<stage>` (`dcat.study.hold_point`): the
study announces "dcat: holding at <stage>" on stderr and waits, and the test kills its whole process group (the
`dcat` command and its papermill kernel) with SIGKILL, as a power cut or the OOM killer would."""
import hashlib, json, os, queue, signal, subprocess, threading, time
from pathlib import Path

import pytest
import torch

from conftest import ROOT, tool

TINY = ["-p", "mc_samples=2", "-p", "backbone_a=efficientnet_b0", "-p", "backbone_b=resnet18", "-p", "fusion_dim=16",
        "-p", "image_size=32", "-p", "batch_size=32", "-p", "max_train=64", "-p", "ood_set=",   # no OOD scoring,
        "-p", "bootstrap_resamples=100", "-p", "embedding=pca"]     # few resamples, no UMAP: seconds matter here

class Study:
    "`dcat study synthetic` in its own process group, its stderr read line by line in a thread."
    def __init__(self, tmp: Path, *args: str, hold: str | None = None):
        env = {**os.environ, "DCAT_CHECKPOINTS_DIR": str(tmp / "ckpt"), "OMP_NUM_THREADS": "1"}
        if hold: env["DCAT_TEST_HOLD"] = hold
        self.p = subprocess.Popen([tool("dcat"), "study", "synthetic", *TINY, "--reports-dir", str(tmp / "reports"), *args],
                                  cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                  start_new_session=True)
        self.lines, self.q = [], queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.p.stderr: self.q.put(line)
        self.q.put(None)

    def wait_for(self, needle: str, timeout: float = 300) -> None:
        end = time.time() + timeout
        while time.time() < end:
            try: line = self.q.get(timeout=1)
            except queue.Empty: continue
            if line is None: break
            self.lines.append(line)
            if needle in line: return
        self.kill()
        raise AssertionError(f"never saw {needle!r}; stderr:\n" + "".join(self.lines)[-4000:])

    def kill(self) -> None:
        try: os.killpg(self.p.pid, signal.SIGKILL)
        except ProcessLookupError: pass
        self.p.wait(timeout=60)

    def finish(self, timeout: float = 600) -> int:
        rc = self.p.wait(timeout=timeout)
        while (line := self.q.get(timeout=10)) is not None: self.lines.append(line)
        return rc

def snapshot(folder: Path) -> dict:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}

def assert_nothing_half_written(tmp: Path) -> None:
    "Every checkpoint loads with weights_only=True and every metrics/aggregate file parses (temporary files aside)."
    for p in (tmp / "ckpt").rglob("*.pt"):
        if not p.name.startswith("."): torch.load(p, map_location="cpu", weights_only=True)
    for p in (tmp / "reports").rglob("*.json"):
        if not any(part.startswith(".") for part in p.relative_to(tmp / "reports").parts): json.loads(p.read_text())

def _kill_lane(tmp: Path, stages: tuple[str, ...], before: dict, new: list[str]) -> None:
    "Kill a study at each of `stages` in turn (each resuming the last): the previous report stays byte-identical."
    dest = tmp / "reports/synthetic/dcat/seed-0"
    for stage in stages:
        s = Study(tmp, *new, hold=None if stage == "training" else stage)
        if stage == "training":                    # killed mid-training, once its first epoch is checkpointed
            s.wait_for("synthetic/dcat/seed-0: training")
            end = time.time() + 300
            while not list((tmp / "ckpt/synthetic/dcat").glob("seed-0-*.last.pt")) and time.time() < end: time.sleep(0.2)
        else:
            s.wait_for(f"dcat: holding at {stage}")
        if stage == "mc":                          # the same settings again, while this run holds its lock: refused
            twin = subprocess.run([tool("dcat"), "study", "synthetic", *TINY, *new, "--reports-dir", str(tmp / "reports")],
                                  cwd=ROOT, capture_output=True, text=True, timeout=300,
                                  env={**os.environ, "DCAT_CHECKPOINTS_DIR": str(tmp / "ckpt")})
            assert twin.returncode == 1 and f"pid {s.p.pid}" in twin.stderr and "already in progress" in twin.stderr, twin.stderr
        s.kill()
        if stage == "swap":                        # killed between the two renames: the old report is parked, whole
            assert not dest.exists() and snapshot(dest.with_name(".seed-0.old")) == before
            from dcat.study import recover_report
            recover_report(dest)
        assert snapshot(dest) == before, f"previous report changed by a kill at {stage}"
        assert_nothing_half_written(tmp)

def test_fault_matrix(tmp_path):
    """SIGKILL at each stage leaves the previous report intact and nothing half-written; the rerun completes.

    The six stages run in two lanes side by side (two cores), each on its own copy of the baseline's reports and
    checkpoints: lane A kills at data loading, mid-training and MC evaluation and then reruns to completion
    (continuing the killed training); lane B at the figures, the HTML export and the final swap."""
    import shutil
    from concurrent.futures import ThreadPoolExecutor
    base = Study(tmp_path / "a", "-p", "epochs=1")
    assert base.finish() == 0, "".join(base.lines)[-3000:]
    dest = tmp_path / "a/reports/synthetic/dcat/seed-0"
    before = snapshot(dest)
    assert {"report.html", "metrics.json", "predictions.npz"} <= set(before)
    for sub in ("reports", "ckpt"): shutil.copytree(tmp_path / "a" / sub, tmp_path / "b" / sub)
    new = ["-p", "epochs=3", "--resume"]           # other settings: the runs below never reuse or resume the baseline
    with ThreadPoolExecutor(2) as pool:
        lanes = [pool.submit(_kill_lane, tmp_path / "a", ("data", "training", "mc"), before, new),
                 pool.submit(_kill_lane, tmp_path / "b", ("figures", "html", "swap"), before, new)]
        for f in lanes: f.result()
    finals = [Study(tmp_path / lane, *new) for lane in ("a", "b")]   # each lane's rerun, side by side
    for lane, done in zip("ab", finals):
        assert done.finish() == 0, "".join(done.lines)[-3000:]
        rec = json.loads((tmp_path / lane / "reports/synthetic/dcat/seed-0/metrics.json").read_text())
        assert rec["params"]["epochs"] == 3 and len(rec["training"]["history"]) == 3
        leftovers = [p for p in (tmp_path / lane / "reports").rglob(".*") if p.name != ".gitignore"]
        leftovers += list((tmp_path / lane / "ckpt").rglob(".*.tmp"))
        assert not leftovers, (lane, leftovers)    # the killed runs' temporaries are cleaned by the rerun
    assert "resumed from epoch" in (dest / "report.html").read_text()        # lane A: the killed training was continued

def test_concurrent_runs(tmp_path):
    "Different seeds run side by side into distinct files (the same settings twice are refused: see the fault matrix)."
    a, b = Study(tmp_path, "-p", "epochs=1", "-p", "seed=0"), Study(tmp_path, "-p", "epochs=1", "-p", "seed=1")
    assert a.finish() == 0 and b.finish() == 0, "".join(a.lines + b.lines)[-3000:]
    ck = sorted(p.name for p in (tmp_path / "ckpt/synthetic/dcat").glob("seed-*.pt") if ".last." not in p.name
                and ".predictor." not in p.name)
    assert len(ck) == 2 and ck[0].startswith("seed-0-") and ck[1].startswith("seed-1-"), ck
    for s in (0, 1):
        d = tmp_path / f"reports/synthetic/dcat/seed-{s}"
        assert json.loads((d / "metrics.json").read_text())["params"]["seed"] == s and (d / "report.html").is_file()

def test_read_only_reports_folder_fails_before_training(tmp_path):
    r = subprocess.run([tool("dcat"), "study", "synthetic", *TINY, "--reports-dir", "/proc/dcat-reports"], cwd=ROOT,
                       capture_output=True, text=True, timeout=300,
                       env={**os.environ, "DCAT_CHECKPOINTS_DIR": str(tmp_path / "ckpt")})
    assert r.returncode == 1 and "/proc/dcat-reports" in r.stderr and "not writable" in r.stderr, r.stderr
    assert "training" not in r.stderr and not (tmp_path / "ckpt").exists()

def test_full_disk_names_the_path_and_keeps_the_previous_file(tmp_path, monkeypatch):
    import errno
    from dcat import config
    target = tmp_path / "metrics.json"
    config.atomic_write_text(target, "previous")
    def no_space(fd): raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(config.os, "fsync", no_space)
    with pytest.raises(OSError) as e: config.atomic_write_text(target, "new " * 1000)
    assert str(target) in str(e.value) and e.value.errno == errno.ENOSPC
    assert target.read_text() == "previous" and [p.name for p in tmp_path.iterdir()] == ["metrics.json"]
