"""Crash-safety of `dcat.train.fit`, tested with real processes and SIGKILL.

1. A run killed mid-training (after its first "last" checkpoint, before it finishes) and simply started again
   resumes on its own and ends with exactly the history and weights of a run that was never interrupted
   (CPU, one thread: bit-for-bit equality, no tolerance).
2. A run killed while it is writing a checkpoint leaves no truncated `*.pt`: every `*.pt` in the folder loads with
   `weights_only=True` (the half-written bytes sit in a `.tmp` file that nothing loads), and the rerun resumes from
   the previous checkpoint and again matches the uninterrupted run.

The model is a small CNN (the DCAT model is too slow for three subprocess runs in a minute on two shared cores);
the data are `dcat.data.make_synthetic` through `dcat.loaders.make_loaders` (seeded sampler, augmentation).
3. The same kill-and-resume for segmentation: a small `dcat.unet.UNet` on generated polyps (`write_seg_folder`),
   trained by the same `fit` with `task="segmentation"`, ends equal to its uninterrupted run.
"""
from __future__ import annotations
import json, os, signal, subprocess, sys, textwrap, time
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
EPOCHS = 6

SCRIPT = textwrap.dedent('''
    import io, json, os, sys, time
    from pathlib import Path
    import torch
    torch.set_num_threads(1)
    from torch import nn
    from dcat.config import atomic_write, atomic_torch_save
    from dcat.data import make_synthetic
    from dcat.loaders import make_loaders
    import dcat.train as T

    out, epochs = Path(sys.argv[1]), int(sys.argv[2])
    slow = float(os.environ.get("DCAT_TEST_SLOW", "0"))          # seconds of sleep per training step
    hang_marker = os.environ.get("DCAT_TEST_HANG_MARKER")         # hang inside the Nth write of the last checkpoint
    hang_at = int(os.environ.get("DCAT_TEST_HANG_AT", "0"))

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                                      nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.ReLU(),
                                      nn.AdaptiveAvgPool2d(1), nn.Flatten())
            self.drop, self.fc = nn.Dropout(0.3), nn.Linear(16, 2)
        def forward(self, x):
            if self.training and slow: time.sleep(slow)
            return self.fc(self.drop(self.body(x)))

    if hang_marker:
        n_last = [0]
        def hanging_save(obj, path):
            if str(path).endswith(".last.pt"):
                n_last[0] += 1
                if n_last[0] == hang_at:
                    with atomic_write(path) as f:
                        buf = io.BytesIO(); torch.save(obj, buf); b = buf.getvalue()
                        f.write(b[: len(b) // 2]); f.flush(); os.fsync(f.fileno())
                        Path(hang_marker).write_text(str(path))
                        time.sleep(300)
                        f.write(b[len(b) // 2:])
                    return Path(path)
            return atomic_torch_save(obj, path)
        T.atomic_torch_save = hanging_save

    task = os.environ.get("DCAT_TEST_TASK", "classification")
    if task == "segmentation":
        from dcat.segdata import load_segfolder, write_seg_folder
        from dcat.unet import UNet
        bundle = load_segfolder(write_seg_folder(out.parent / "toy", n=30, size=(32, 32), seed=0), 32, seed=0)
        loaders = make_loaders(bundle, batch_size=4, seed=0)
        torch.manual_seed(0)
        model = UNet(widths=(8, 16, 32), dropout=0.1)
        if slow: model.register_forward_pre_hook(lambda m, a: time.sleep(slow) if m.training else None)
    else:
        bundle = make_synthetic(2, n_per_class=48, image_size=32, seed=0)
        loaders = make_loaders(bundle, batch_size=16, seed=0)
        torch.manual_seed(0)
        model = Net()
    res = T.fit(model, loaders, task, epochs=epochs, lr=5e-3, patience=None, checkpoint_path=out / "model.pt", seed=0,
                progress=False, run_config={"test": "resume"})
    torch.save(model.state_dict(), out / "final_weights.pt")
    hist = [{k: v for k, v in h.items() if k != "seconds"} for h in res.history]
    (out / "result.json").write_text(json.dumps(dict(history=hist, best_epoch=res.best_epoch,
        monitor=res.monitor, resumed_from_epoch=res.resumed_from_epoch)))
''')


def _cmd(tmp: Path, out: Path) -> list[str]:
    script = tmp / "train_script.py"
    if not script.exists(): script.write_text(SCRIPT)
    out.mkdir(parents=True, exist_ok=True)
    return [sys.executable, str(script), str(out), str(EPOCHS)]


def _env(**extra: str) -> dict:
    env = dict(os.environ, PYTHONPATH=f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
               OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    env.update(extra)
    return env


def _run(cmd: list[str], env: dict, timeout: float = 60) -> None:
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    assert p.returncode == 0, p.stderr[-3000:]


def _wait_for(path: Path, proc: subprocess.Popen, timeout: float = 40) -> None:
    t0 = time.time()
    while not path.exists():
        if proc.poll() is not None:
            raise AssertionError(f"process exited ({proc.returncode}) before {path} appeared: {proc.stderr.read()[-3000:]}")
        if time.time() - t0 > timeout: proc.kill(); raise AssertionError(f"{path} did not appear in {timeout}s")
        time.sleep(0.02)


def _kill(proc: subprocess.Popen) -> None:
    assert proc.poll() is None, "the run finished before it could be killed"
    proc.send_signal(signal.SIGKILL); proc.wait(10)
    assert proc.returncode == -signal.SIGKILL


def _assert_same_run(a: Path, b: Path) -> None:
    ra, rb = json.loads((a / "result.json").read_text()), json.loads((b / "result.json").read_text())
    assert ra["history"] == rb["history"] and ra["best_epoch"] == rb["best_epoch"]   # exact float equality
    wa = torch.load(a / "final_weights.pt", weights_only=True); wb = torch.load(b / "final_weights.pt", weights_only=True)
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    "An uninterrupted run."
    tmp = tmp_path_factory.mktemp("ref"); out = tmp / "run"
    _run(_cmd(tmp, out), _env())
    r = json.loads((out / "result.json").read_text())
    assert r["resumed_from_epoch"] is None and len(r["history"]) == EPOCHS
    return out


def test_sigkill_then_resume_matches_uninterrupted(reference, tmp_path):
    out = tmp_path / "run"; cmd = _cmd(tmp_path, out); last = out / "model.last.pt"
    proc = subprocess.Popen(cmd, env=_env(DCAT_TEST_SLOW="0.03"), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    _wait_for(last, proc)
    time.sleep(0.1)                                   # somewhere in epoch 2
    _kill(proc)
    assert not (out / "result.json").exists()
    killed_at = torch.load(last, weights_only=True)["epoch"]
    assert 1 <= killed_at < EPOCHS
    _run(cmd, _env())                                 # the same command again: resumes by itself
    r = json.loads((out / "result.json").read_text())
    assert r["resumed_from_epoch"] == killed_at
    _assert_same_run(reference, out)


def test_kill_during_checkpoint_write_leaves_no_truncated_pt(reference, tmp_path):
    out = tmp_path / "run"; cmd = _cmd(tmp_path, out); marker = tmp_path / "hanging"
    proc = subprocess.Popen(cmd, env=_env(DCAT_TEST_HANG_MARKER=str(marker), DCAT_TEST_HANG_AT="2"),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    _wait_for(marker, proc)                           # half of epoch 2's last checkpoint is on disk
    _kill(proc)
    tmps = [p for p in out.iterdir() if p.name.endswith(".tmp")]
    assert tmps, "expected the half-written temporary file"
    for t in tmps:                                    # it really is truncated: it would not load
        with pytest.raises(Exception): torch.load(t, weights_only=True)
    pts = sorted(out.glob("*.pt"))
    assert {p.name for p in pts} >= {"model.pt", "model.last.pt"}
    for p in pts: torch.load(p, weights_only=True)    # every *.pt loads
    assert torch.load(out / "model.last.pt", weights_only=True)["epoch"] == 1   # the previous one, intact
    _run(cmd, _env())
    assert json.loads((out / "result.json").read_text())["resumed_from_epoch"] == 1
    _assert_same_run(reference, out)


@pytest.fixture(scope="module")
def seg_reference(tmp_path_factory) -> Path:
    "An uninterrupted segmentation run."
    tmp = tmp_path_factory.mktemp("segref"); out = tmp / "run"
    _run(_cmd(tmp, out), _env(DCAT_TEST_TASK="segmentation"))
    r = json.loads((out / "result.json").read_text())
    assert r["resumed_from_epoch"] is None and len(r["history"]) == EPOCHS and r["monitor"] == "val_dice"
    return out


def test_segmentation_sigkill_then_resume_matches_uninterrupted(seg_reference, tmp_path):
    out = tmp_path / "run"; cmd = _cmd(tmp_path, out); last = out / "model.last.pt"
    proc = subprocess.Popen(cmd, env=_env(DCAT_TEST_TASK="segmentation", DCAT_TEST_SLOW="0.05"),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    _wait_for(last, proc)
    time.sleep(0.1)                                   # somewhere in epoch 2
    _kill(proc)
    killed_at = torch.load(last, weights_only=True)["epoch"]
    assert 1 <= killed_at < EPOCHS and not (out / "result.json").exists()
    _run(cmd, _env(DCAT_TEST_TASK="segmentation"))
    r = json.loads((out / "result.json").read_text())
    assert r["resumed_from_epoch"] == killed_at and all("val_dice" in h for h in r["history"])
    _assert_same_run(seg_reference, out)
