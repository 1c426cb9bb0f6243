"""`dcat.train.fit` under torchrun: 2 CPU processes (gloo) against 1 process.

Two ranks with batch 8 see, step for step, the same images and augmentations as one process with batch 16
(`ShardedSampler` interleaves the caller's seeded order), and DDP averages the two half-batch gradients, which is
the full-batch gradient. The runs differ only in floating-point summation order, so they agree to a tolerance, not
bit for bit: we allow 1e-4 (absolute) on the metrics and the final weights; we observe about 2e-8 on the weights. The model
has no BatchNorm and no dropout, whose per-rank statistics and masks would legitimately differ.
"""
from __future__ import annotations
import json, os, subprocess, sys, textwrap
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
TOL = 1e-4

SCRIPT = textwrap.dedent('''
    import json, os, sys
    from pathlib import Path
    import torch
    torch.set_num_threads(1)
    from torch import nn
    from dcat.data import make_synthetic
    from dcat.loaders import make_loaders
    from dcat.train import fit

    bs, out = int(sys.argv[1]), Path(sys.argv[2])
    bundle = make_synthetic(2, n_per_class=32, image_size=32, seed=0)
    loaders = make_loaders(bundle, batch_size=bs, seed=0)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.ReLU(), nn.Conv2d(8, 16, 3, stride=2, padding=1),
                          nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 2))
    res = fit(model, loaders, epochs=3, lr=5e-3, patience=None, checkpoint_path=out / "model.pt", seed=0, progress=False)
    if int(os.environ.get("RANK", "0")) == 0:
        torch.save(model.state_dict(), out / "final_weights.pt")
        (out / "result.json").write_text(json.dumps(dict(history=res.history, best_epoch=res.best_epoch,
                                                          world=int(os.environ.get("WORLD_SIZE", "1")))))
''')


def _run(args: list[str], out: Path, ddp: bool) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")}
    env.update(PYTHONPATH=f"{ROOT}{os.pathsep}{env.get('PYTHONPATH', '')}", OMP_NUM_THREADS="1")
    out.mkdir(parents=True)
    pre = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"] if ddp else [sys.executable]
    p = subprocess.run(pre + args + [str(out)], env=env, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr[-4000:]
    return json.loads((out / "result.json").read_text())


def test_two_ranks_match_one_process(tmp_path):
    script = tmp_path / "ddp_script.py"; script.write_text(SCRIPT)
    one = _run([str(script), "16"], tmp_path / "one", ddp=False)   # 1 process, batch 16
    two = _run([str(script), "8"], tmp_path / "two", ddp=True)     # 2 ranks, batch 8 each
    assert (one["world"], two["world"]) == (1, 2) and len(one["history"]) == len(two["history"]) == 3
    for a, b in zip(one["history"], two["history"]):
        for k in ("train_loss", "val_loss", "val_auc", "lr"):
            assert abs(a[k] - b[k]) <= TOL, (k, a[k], b[k])
    wa = torch.load(tmp_path / "one" / "final_weights.pt", weights_only=True)
    wb = torch.load(tmp_path / "two" / "final_weights.pt", weights_only=True)
    diff = max((wa[k] - wb[k]).abs().max().item() for k in wa)
    print(f"max |weights diff| = {diff:.2e}, world sizes: 1 vs 2"); assert diff <= TOL, diff
    assert (tmp_path / "two" / "model.last.pt").exists()   # rank 0 wrote the checkpoints


def test_dcat_train_under_torchrun(tmp_path):
    "The `dcat train` entry point runs under torchrun with 2 CPU processes; rank 0 alone writes the files."
    env = {k: v for k, v in os.environ.items() if k not in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")}
    env.update(OMP_NUM_THREADS="1", DCAT_CHECKPOINTS_DIR=str(tmp_path / "ckpt"))
    dcat = str(Path(sys.executable).parent / "dcat")
    p = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", dcat, "train",
                        "synthetic", "--quiet", "-p", "epochs=1", "-p", "mc_samples=2", "-p", "image_size=32",
                        "-p", "backbone_a=efficientnet_b0", "-p", "backbone_b=resnet18", "-p", "fusion_dim=32",
                        "-p", "batch_size=16"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-4000:]
    (mj,) = (tmp_path / "ckpt/synthetic/dcat").glob("seed-0-*.metrics.json")      # keyed by seed and settings
    rec = json.loads(mj.read_text())
    assert rec["metrics"]["n"] > 0 and len(rec["training"]["history"]) == 1
    assert p.stdout.count("metrics:") == 1, "only rank 0 reports"
