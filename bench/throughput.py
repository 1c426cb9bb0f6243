"""Training and evaluation throughput per model arm, the fusion overhead, and the CPU settings that matter.

Everything is measured in one run on the same random batch, after warm-up, as medians of interleaved repeats:

1. images/s of a training step (forward, backward, AdamW step) and of evaluation (inference mode) for every arm;
2. the fusion overhead: time(DCAT forward) / time(its two bare backbones forward) (target <= 1.15);
3. CPU settings, each as a ratio against the default: channels_last memory format, one thread instead of all,
   and torch.compile (eval forward) when --compile is given.

    python bench/throughput.py                          # efficientnet_b4 + resnet34, 48 px, batch 64, CPU
    python bench/throughput.py --arms dcat concat --repeats 3
    python bench/throughput.py --device cuda --image-size 224 --batch 64 --amp
"""
import argparse, sys, time
from contextlib import nullcontext
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))          # run from a checkout without installing

from dcat.config import get_device, seed_everything
from dcat.config import list_models
from dcat.model import build_model
from _timing import report, time_interleaved


def step_fns(model, x, y, amp):
    "A training step and an evaluation pass over the batch `x`."
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    ctx = (lambda: torch.autocast(x.device.type, dtype=torch.bfloat16)) if amp else nullcontext
    def train():
        model.train()
        with ctx(): loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True); loss.backward(); opt.step()
    def evaluate():
        model.eval()
        with torch.inference_mode(), ctx(): model(x)
    return train, evaluate


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--arms", nargs="*", default=None, help="model arms (default: all)")
    ap.add_argument("--backbone-a", default="efficientnet_b4")
    ap.add_argument("--backbone-b", default="resnet34")
    ap.add_argument("--image-size", type=int, default=48)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--amp", action="store_true", help="bf16 autocast (GPU)")
    ap.add_argument("--compile", action="store_true", help="also time torch.compile on the DCAT eval forward")
    a = ap.parse_args(argv)
    seed_everything(0); dev = get_device(a.device)
    x = torch.randn(a.batch, 3, a.image_size, a.image_size, device=dev)
    y = torch.randint(0, 2, (a.batch,), device=dev)
    cfg = dict(backbone_a=a.backbone_a, backbone_b=a.backbone_b)
    print(f"device={dev} threads={torch.get_num_threads()} image={a.image_size} batch={a.batch} repeats={a.repeats} "
          f"torch={torch.__version__} backbones={a.backbone_a}+{a.backbone_b}")
    out = {}

    print("\n1. throughput per arm (images/s)")
    print(f"{'arm':>14} {'params M':>9} {'train img/s':>12} {'eval img/s':>11}")
    for arm in a.arms or list_models("classification"):
        model = build_model(arm, 2, **cfg).to(dev)
        train, evaluate = step_fns(model, x, y, a.amp)
        s = time_interleaved({"train": train, "eval": evaluate}, a.repeats, a.warmup, dev)
        out[arm] = {"params": sum(p.numel() for p in model.parameters()),
                    "train_ips": a.batch / s["train"]["median"], "eval_ips": a.batch / s["eval"]["median"]}
        print(f"{arm:>14} {out[arm]['params'] / 1e6:9.2f} {out[arm]['train_ips']:12.1f} {out[arm]['eval_ips']:11.1f}",
              flush=True)

    print("\n2. fusion overhead (eval forward)")
    model = build_model("dcat", 2, **cfg).to(dev).eval()
    def bare():
        with torch.inference_mode(): [b(x) for b in model.backbones]
    def full():
        with torch.inference_mode(): model(x)
    s = time_interleaved({"two bare backbones": bare, "DCAT": full}, a.repeats * 2, a.warmup, dev)
    report(s)
    out["fusion_overhead"] = s["DCAT"]["median"] / s["two bare backbones"]["median"]
    print(f"fusion_overhead_ratio: {out['fusion_overhead']:.3f}")

    print("\n3. CPU settings (ratio of images/s against the default; > 1 is faster)")
    runs = {}
    base_train, base_eval = step_fns(model, x, y, a.amp)
    runs["default train"], runs["default eval"] = base_train, base_eval
    cl_model = build_model("dcat", 2, **cfg).to(dev).to(memory_format=torch.channels_last)
    cl_x = x.contiguous(memory_format=torch.channels_last)
    runs["channels_last train"], runs["channels_last eval"] = step_fns(cl_model, cl_x, y, a.amp)
    if a.compile:
        comp = torch.compile(build_model("dcat", 2, **cfg).to(dev).eval())
        def compiled_eval():
            with torch.inference_mode(): comp(x)
        t0 = time.perf_counter(); compiled_eval()   # compile outside the timed region, but say what it cost
        print(f"torch.compile: first call (compilation) took {time.perf_counter() - t0:.1f} s")
        runs["compiled eval"] = compiled_eval
    s = time_interleaved(runs, a.repeats, a.warmup, dev)
    report(s)
    for k in [k for k in runs if not k.startswith("default")]:
        kind = k.split()[-1]
        r = s[f"default {kind}"]["median"] / s[k]["median"]
        out[f"{k} speedup"] = r
        print(f"{k} speedup: {r:.2f}")
    if "compiled eval" in s:
        print(f"compiled eval vs channels_last eval: {s['channels_last eval']['median'] / s['compiled eval']['median']:.2f}")
    if dev.type == "cpu" and torch.get_num_threads() > 1:
        n = torch.get_num_threads()
        t_all = time_interleaved({"eval": base_eval}, a.repeats, a.warmup, dev)["eval"]["median"]
        torch.set_num_threads(1)
        t_one = time_interleaved({"eval": base_eval}, a.repeats, a.warmup, dev)["eval"]["median"]
        torch.set_num_threads(n)
        out["threads speedup"] = t_one / t_all
        print(f"{n} threads vs 1 thread eval speedup: {t_one / t_all:.2f}")
    return out


if __name__ == "__main__":
    main()
