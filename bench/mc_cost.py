"""Cost of MC-dropout prediction relative to one deterministic pass, for both MC settings, measured in one run.

`dcat.uncertainty.mc_predict` runs what is deterministic once per image and samples the rest T times:
- `mc_dropout=head` (default): backbones and fusion once, only the head T times (target: ratio <= 1.3);
- `mc_dropout=fusion`: backbones and the fusion's projections and attention once, the fusion's tail (dropout,
  residuals, norms, combine, CBAM, map dropout, pooling) and the head T times (target: ratio <= 3 at T = 30).
Both models share the same weights (the fusion setting adds only parameter-free dropout layers). Everything is timed
on the same random batch, after warm-up, as the median of several repeats, interleaved.

    python bench/mc_cost.py                       # DCAT efficientnet_b4 + resnet34, 48 px, batch 64, T=30, CPU
    python bench/mc_cost.py --threads 1 --repeats 9   # on a busy shared CPU: avoid thread oversubscription
    python bench/mc_cost.py --device cuda --image-size 224 --batch 32
"""
import argparse, sys, warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))          # run from a checkout without installing

from dcat.config import get_device, seed_everything
from dcat.model import build_model
from dcat.uncertainty import deterministic_predict, mc_predict, mc_predict_naive
from _timing import report, time_interleaved


def main(argv=None) -> dict[str, float]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="dcat")
    ap.add_argument("--backbone-a", default="efficientnet_b4")
    ap.add_argument("--backbone-b", default="resnet34")
    ap.add_argument("--num-classes", type=int, default=2)
    ap.add_argument("--image-size", type=int, default=48)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--T", type=int, default=30)
    ap.add_argument("--fusion-dropout", type=float, default=0.1)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--device", default="cpu", help="cpu, cuda, auto")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    ap.add_argument("--naive", action="store_true", help="also time the naive T full passes (slow)")
    a = ap.parse_args(argv)
    if a.threads: torch.set_num_threads(a.threads)
    seed_everything(0)
    dev = get_device(a.device)
    kw = dict(backbone_a=a.backbone_a, backbone_b=a.backbone_b)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")                                 # "training from scratch": expected here
        head = build_model(a.model, a.num_classes, **kw).to(dev).eval()
        fusion = build_model(a.model, a.num_classes, mc_dropout="fusion", fusion_dropout=a.fusion_dropout, **kw)
    fusion.load_state_dict(head.state_dict()); fusion.to(dev).eval()
    x = torch.randn(a.batch, 3, a.image_size, a.image_size)
    loader = [(x, torch.zeros(a.batch, dtype=torch.long))]              # one batch, the same for all
    runs = {"deterministic": lambda: deterministic_predict(head, loader, dev),
            f"mc head T={a.T}": lambda: mc_predict(head, loader, T=a.T, device=dev),
            f"mc fusion T={a.T}": lambda: mc_predict(fusion, loader, T=a.T, device=dev)}
    if a.naive: runs[f"naive fusion T={a.T}"] = lambda: mc_predict_naive(fusion, loader, T=a.T, device=dev)
    stats = time_interleaved(runs, a.repeats, a.warmup, dev)
    med = {k: v["median"] for k, v in stats.items()}
    print(f"model={a.model} backbones={a.backbone_a}+{a.backbone_b} image={a.image_size} batch={a.batch} "
          f"fusion_dropout={a.fusion_dropout} device={dev} threads={torch.get_num_threads()} repeats={a.repeats} "
          f"torch={torch.__version__}")
    report(stats, 20)
    ratios = {k: med[k] / med["deterministic"] for k in med if k != "deterministic"}
    for k, r in ratios.items(): print(f"cost ratio {k} / deterministic: {r:.2f}")
    return ratios


if __name__ == "__main__":
    main()
