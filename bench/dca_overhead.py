"""Parameter and FLOP overhead of DCA on the U-Net's skip connections (dcat.unet), measured in one run.

Counts come from `torch.utils.flop_counter.FlopCounterMode` on one forward pass of a batch of one image (it counts
matrix multiplications and convolutions; elementwise ops, softmax, norms and pooling are not counted), so they do
not depend on the machine. Attention runs on SDPA's math backend while counting: the counter does not see the fused
CPU kernel that channel cross-attention would otherwise use (0.72 GFLOPs at 224 px would go missing). `--time` also times a forward pass of both models,
interleaved (wall time on a shared CPU varies; the FLOP ratio does not).

    python bench/dca_overhead.py                     # 224 px (the paper's size) and 64 px (the kvasir_seg study's)
    python bench/dca_overhead.py --sizes 224 128 64 --time
"""
import argparse, sys
from pathlib import Path

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))          # run from a checkout without installing

from dcat.unet import build_seg_model
from _timing import report, time_interleaved


def flops(model: torch.nn.Module, size: int) -> int:
    "FLOPs of one eval-mode forward pass of a 1 × 3 × size × size batch."
    with torch.inference_mode(), sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as fc:
        model(torch.randn(1, 3, size, size))
    return fc.get_total_flops()


def main(argv=None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[224, 64], help="image sizes (multiples of 16)")
    ap.add_argument("--time", action="store_true", help="also time one forward pass of a batch of 8 per model")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = ap.parse_args(argv)
    if args.threads: torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    unet, dca = build_seg_model("unet").eval(), build_seg_model("unet_dca").eval()
    pu, pd = (sum(p.numel() for p in m.parameters()) for m in (unet, dca))
    print(f"parameters: U-Net {pu / 1e6:.3f} M, U-Net + DCA {pd / 1e6:.3f} M, DCA {(pd - pu) / 1e6:.3f} M, "
          f"ratio {pd / pu:.4f} (the authors report 8.64 M and 8.75 M)")
    rows = []
    for s in args.sizes:
        fu, fd = flops(unet, s), flops(dca, s)
        rows.append({"size": s, "unet_gflops": fu / 1e9, "unet_dca_gflops": fd / 1e9, "ratio": fd / fu})
        print(f"{s:4d} px: U-Net {fu / 1e9:7.2f} GFLOPs, U-Net + DCA {fd / 1e9:7.2f} GFLOPs, DCA {(fd - fu) / 1e9:6.2f} GFLOPs, "
              f"ratio {fd / fu:.4f}  (per image, forward)")
        if args.time:
            x = torch.randn(8, 3, s, s)
            with torch.inference_mode():
                st = time_interleaved({f"unet {s}px": lambda: unet(x), f"unet_dca {s}px": lambda: dca(x)}, repeats=3, warmup=1)
            report(st)
            print(f"      time ratio {st[f'unet_dca {s}px']['median'] / st[f'unet {s}px']['median']:.3f}")
    return rows


if __name__ == "__main__":
    main()
