"""Cost of MC-dropout prediction relative to one deterministic pass, measured in one run.

`dcat.uncertainty.mc_predict` runs the backbones and the fusion once per image and samples only the head's dropout
T times, so T=30 samples should cost little more than one deterministic forward pass (target: ratio <= 1.3).
Both are timed on the same random batch, after warm-up, as the median of several repeats (interleaved).

    python bench/mc_cost.py                       # DCAT efficientnet_b4 + resnet34, 48 px, batch 64, T=30, CPU
    python bench/mc_cost.py --threads 1 --repeats 9   # on a busy shared CPU: avoid thread oversubscription
    python bench/mc_cost.py --device cuda --image-size 224 --batch 32
"""
import argparse, sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))          # run from a checkout without installing

from dcat.config import get_device, seed_everything
from dcat.model import build_model
from dcat.uncertainty import deterministic_predict, mc_predict, mc_predict_naive
from _timing import report, time_interleaved


def main(argv=None) -> float:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="dcat")
    ap.add_argument("--backbone-a", default="efficientnet_b4")
    ap.add_argument("--backbone-b", default="resnet34")
    ap.add_argument("--num-classes", type=int, default=2)
    ap.add_argument("--image-size", type=int, default=48)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--T", type=int, default=30)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--device", default="cpu", help="cpu, cuda, auto")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    ap.add_argument("--naive", action="store_true", help="also time the naive T full passes (slow)")
    a = ap.parse_args(argv)
    if a.threads: torch.set_num_threads(a.threads)
    seed_everything(0)
    dev = get_device(a.device)
    model = build_model(a.model, a.num_classes, backbone_a=a.backbone_a, backbone_b=a.backbone_b).to(dev).eval()
    x = torch.randn(a.batch, 3, a.image_size, a.image_size)
    loader = [(x, torch.zeros(a.batch, dtype=torch.long))]              # one batch, the same for both
    runs = {"deterministic": lambda: deterministic_predict(model, loader, dev),
            f"mc T={a.T}": lambda: mc_predict(model, loader, T=a.T, device=dev)}
    if a.naive: runs[f"naive T={a.T}"] = lambda: mc_predict_naive(model, loader, T=a.T, device=dev)
    stats = time_interleaved(runs, a.repeats, a.warmup, dev)
    med = {k: v["median"] for k, v in stats.items()}
    print(f"model={a.model} backbones={a.backbone_a}+{a.backbone_b} image={a.image_size} batch={a.batch} "
          f"device={dev} threads={torch.get_num_threads()} repeats={a.repeats} torch={torch.__version__}")
    report(stats, 16)
    ratio = med[f"mc T={a.T}"] / med["deterministic"]
    if a.naive: print(f"naive_cost_ratio T={a.T}: {med[f'naive T={a.T}'] / med['deterministic']:.2f}")
    print(f"mc_cost_ratio T={a.T}: {ratio:.2f}")
    return ratio


if __name__ == "__main__":
    main()
