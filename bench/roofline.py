"""How close a DCAT training step comes to the machine's limit, where the step's time goes, and the two candidate fixes.

Everything is measured in one run, at one torch thread count (`--threads`, default: torch's current):

1. the machine's dense-matmul peak: a large square float32 `torch.mm` (bf16 too with `--amp`), median of repeats;
2. the achieved FLOP/s of one training step of the study's default model (settings.ini: EfficientNet-B4 + ResNet34,
   48 px, batch 64, channels-last as the fit loop trains on the CPU and CUDA; forward, cross-entropy, backward,
   AdamW step) = counted FLOPs / median step time, and its ratio to the peak. FLOPs come from
   `torch.utils.flop_counter.FlopCounterMode` over the forward and the backward of that step (it counts matrix
   multiplications and convolutions; elementwise ops, norms, pooling and the optimizer step are not counted, so the
   ratio is the useful-work fraction of the peak). Attention runs on SDPA's math backend while counting, because
   the counter does not see the fused CPU kernel; the timed steps use the default backend;
3. where the step's time goes, with `torch.profiler` (CPU activities) over a few steps: data loading (one batch from
   the study's own loader: the real data file when present, else the synthetic set), backbone A, backbone B, fusion,
   the rest of the forward (pooling, concatenation), head, loss, backward, optimizer step; per part the ms per step,
   its share of the step and, for the forward parts, its FLOP/s; then the top five operators by self CPU time;
4. the candidate fixes for the largest waste, as ratios of interleaved step times: channels-last against contiguous,
   and bf16 autocast against float32 (all four combinations, same initial weights, same batch);
5. the optimizer step alone: AdamW as the fit loop builds it against its foreach and fused implementations.

    python bench/roofline.py                              # the default study model, CPU, torch's thread count
    python bench/roofline.py --threads 1
    python bench/roofline.py --image-size 32 --batch 8 --quick          # a few seconds: a smoke test
    python bench/roofline.py --device cuda --image-size 224 --batch 64 --amp
"""
import argparse, copy, os, sys, warnings
from contextlib import nullcontext
from pathlib import Path

os.environ.setdefault("KINETO_LOG_LEVEL", "5")                       # the profiler's own start/stop chatter off
import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.profiler import ProfilerActivity, profile, record_function
from torch.utils.flop_counter import FlopCounterMode, conv_flop_count

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))          # run from a checkout without installing

from dcat.config import get_device, load_settings, seed_everything
from dcat.data import load_dataset, make_synthetic
from dcat.loaders import make_loaders
from dcat.model import model_from_settings
from dcat.train import CHANNELS_LAST_DEVICES
from _timing import report, time_interleaved

warnings.filterwarnings("ignore", message=".*no pretrained weights file given.*")   # the study trains from scratch too


# ---------------------------------------------------------------------------------------------------- the machine
def matmul_peak(n: int, dtype: torch.dtype, device: torch.device, repeats: int, warmup: int) -> tuple[float, float]:
    "FLOP/s of an n × n × n `torch.mm` in `dtype` (median of `repeats`), and that median in seconds."
    g = torch.Generator(device="cpu").manual_seed(0)
    a, b = (torch.randn(n, n, generator=g).to(device=device, dtype=dtype) for _ in range(2))
    c = torch.empty(n, n, device=device, dtype=dtype)
    s = time_interleaved({"mm": lambda: torch.mm(a, b, out=c)}, repeats, warmup, device)["mm"]["median"]
    return 2 * n ** 3 / s, s


# ---------------------------------------------------------------------------------------------------- the step
def to_device(x: torch.Tensor, device: torch.device, channels_last: bool) -> torch.Tensor:
    "As dcat.train._to_device, with the memory format chosen by the caller."
    x = x.to(device, non_blocking=True)
    return x.contiguous(memory_format=torch.channels_last) if channels_last and x.dim() == 4 else x


class Step:
    "One training step of `model` (forward, cross-entropy, backward, AdamW step), as the fit loop does it."
    def __init__(self, model, cfg, device, channels_last: bool, amp: bool):
        self.model, self.device, self.amp = model.to(device), device, amp
        if channels_last: self.model.to(memory_format=torch.channels_last)
        self.channels_last = channels_last
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=cfg["lr"], weight_decay=cfg["weight_decay"])
        self.model.train()

    def autocast(self):
        return torch.autocast(self.device.type, dtype=torch.bfloat16) if self.amp else nullcontext()

    def __call__(self, x, y, ranges: bool = False):
        "One step; `ranges`: inside profiler ranges, each closed after the device finished its work (CUDA: synchronised)."
        rf = record_function if ranges else (lambda name: nullcontext())
        sync = torch.cuda.synchronize if ranges and self.device.type == "cuda" else (lambda: None)
        with rf("forward"):
            with self.autocast(): logits = self.model(x)
            sync()
        with rf("loss"): loss = F.cross_entropy(logits.float(), y); sync()
        with rf("backward"):
            self.opt.zero_grad(set_to_none=True)
            loss.backward(); sync()
        with rf("optimizer step"): self.opt.step(); sync()
        return loss


def conv_backward_flop_grouped(grad_out_shape, x_shape, w_shape, _bias, _stride, _padding, _dilation, transposed,
                               _output_padding, groups, output_mask, out_shape=None, **kw) -> int:
    """`aten.convolution_backward`'s FLOPs with the weight gradient of a grouped convolution divided by `groups`.
    torch's own formula (up to at least 2.14) leaves `groups` out of that term, so a depthwise convolution's weight
    gradient is counted `channels` times over (it put DCAT's backward at 2.4-6x its forward, not 2x); upstream fixed it
    the same way in pytorch/pytorch#183405. The input-gradient term is torch's, unchanged."""
    t = lambda s: [s[1], s[0], *s[2:]]
    n = 0
    if output_mask[0]: n += conv_flop_count(grad_out_shape, w_shape, out_shape[0], not transposed)
    if output_mask[1]:
        gw = out_shape[1]
        n += (conv_flop_count(t(grad_out_shape), t(x_shape), t(gw), transposed=False) if transposed
              else conv_flop_count(t(x_shape), t(grad_out_shape), t(gw), transposed=False)) // groups
    return n


def count_flops(step: Step, x, y) -> dict:
    """Counted FLOPs of one training step: `total` (forward + backward, grouped-convolution fix applied), `stock`
    (torch's formulas as shipped), `forward`, and `forward_per_module` (keyed by the counter's names,
    `DCAT.backbones.0`, ...). The weights and BatchNorm statistics are left as they were."""
    model = step.model
    state = copy.deepcopy(model.state_dict())
    fix = {torch.ops.aten.convolution_backward: conv_backward_flop_grouped}
    with sdpa_kernel(SDPBackend.MATH):
        with FlopCounterMode(display=False) as fwd, step.autocast(): model(x)
        with FlopCounterMode(display=False, custom_mapping=fix) as full, FlopCounterMode(display=False) as stock:
            with step.autocast(): logits = model(x)
            F.cross_entropy(logits.float(), y).backward()
    model.zero_grad(set_to_none=True)
    model.load_state_dict(state)
    return dict(total=full.get_total_flops(), stock=stock.get_total_flops(), forward=fwd.get_total_flops(),
                forward_per_module={k: sum(v.values()) for k, v in fwd.get_flop_counts().items()})


# ---------------------------------------------------------------------------------------------------- the parts
def forward_parts(model, cfg) -> dict[str, torch.nn.Module]:
    "The modules DCAT's forward calls in turn (dcat.model.DCAT.forward): each backbone, the fusion, the head."
    names = [f"backbone A ({cfg['backbone_a']})", f"backbone B ({cfg['backbone_b']})"]
    if len(model.backbones) == 1: names = [f"backbone ({cfg['backbone_a' if cfg['model'] != 'resnet_only' else 'backbone_b']})"]
    parts = dict(zip(names, model.backbones))
    parts["fusion"], parts["head"] = model.fusion, model.head
    return parts


def add_ranges(parts: dict[str, torch.nn.Module], device: torch.device) -> list:
    """Forward pre/post hooks that open and close a profiler range named after each part (on CUDA the range closes
    after a synchronisation, so it spans the part's GPU work); returns the handles."""
    handles = []
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    for name, m in parts.items():
        stack = []
        def pre(mod, inp, name=name, stack=stack):
            sync(); r = record_function(name); r.__enter__(); stack.append(r)
        def post(mod, inp, out, stack=stack): sync(); stack.pop().__exit__(None, None, None)
        handles += [m.register_forward_pre_hook(pre), m.register_forward_hook(post)]
    return handles


def load_bundle(cfg: dict, data: str, batch: int):
    "The study's dataset at the settings' image size (`data='auto'`), or the synthetic set when absent or asked for."
    if data == "auto":
        try: return load_dataset(cfg), f"{cfg['dataset']} ({cfg.get('data_dir')})"
        except FileNotFoundError as e: print(f"data: {e.args[0].split(';')[0]}; using the synthetic set instead")
    size = cfg["image_size"]
    return make_synthetic(2, max(batch, 64), size, seed=0), f"synthetic ({max(batch, 64)} images per class)"


def profile_steps(step: Step, cfg, loader, n_steps: int, device) -> tuple:
    "Profile `n_steps` training steps, each loading its batch from `loader`; `(profiler, seconds per step without it)`."
    parts = forward_parts(step.model, cfg)
    handles = add_ranges(parts, device)
    it = iter(loader)
    def one():
        nonlocal it
        with record_function("step"):
            with record_function("data loading"):
                try: x, y = next(it)
                except StopIteration: it = iter(loader); x, y = next(it)
                x, y = to_device(x, device, step.channels_last), torch.as_tensor(y).to(device).reshape(-1).long()
            step(x, y, ranges=True)
        if device.type == "cuda": torch.cuda.synchronize()
    one()                                                              # warm-up
    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=acts) as prof:
        for _ in range(n_steps): one()
    for h in handles: h.remove()
    return prof, parts


def part_table(prof, model, parts, n_steps: int, fwd_per: dict, fwd_total: int, peak: float) -> dict:
    "Print part, ms per step, share of the step, forward FLOP/s and fraction of peak; return `{part: ms}`."
    ev = {e.key: e for e in prof.key_averages()}
    ms = lambda k: ev[k].cpu_time_total / 1000 / n_steps if k in ev else 0.0
    step_ms, fwd_ms = ms("step"), ms("forward")
    fqn = {id(m): k for k, m in model.named_modules()}                # counter names: DCAT.backbones.0, DCAT.fusion, ...
    flops_of = {n: fwd_per.get(f"{type(model).__name__}.{fqn[id(m)]}", 0) for n, m in parts.items()}
    rows = [("data loading", ms("data loading"), None)]
    rows += [(n, ms(n), flops_of[n]) for n in parts if n != "head"]
    rows.append(("rest of forward (pooling, concat)", fwd_ms - sum(ms(n) for n in parts),
                 fwd_total - sum(flops_of.values())))
    rows.append(("head", ms("head"), flops_of["head"]))
    rows += [(n, ms(n), None) for n in ("loss", "backward", "optimizer step")]
    print(f"{'part':>36} {'ms/step':>9} {'share':>7} {'fwd GFLOP/s':>12} {'of peak':>8}")
    for n, t, fl in rows:
        fs = f"{fl / (t / 1000) / 1e9:12.2f} {fl / (t / 1000) / peak:8.1%}" if fl and t > 0 else f"{'':>12} {'':>8}"
        print(f"{n:>36} {t:9.1f} {t / step_ms:7.1%} {fs}")
    other = step_ms - sum(t for _, t, _ in rows)
    print(f"{'(not in any range)':>36} {other:9.1f} {other / step_ms:7.1%}")
    print(f"{'step (with the profiler on)':>36} {step_ms:9.1f} {1:7.1%}")
    return {n: t for n, t, _ in rows}


def top_ops(prof, n_steps: int, step_ms: float, k: int = 5, skip: set = frozenset()) -> None:
    "The `k` operators with the most self CPU time per step."
    ops = [e for e in prof.key_averages() if e.key not in skip and not e.key.startswith("ProfilerStep")]
    ops.sort(key=lambda e: e.self_cpu_time_total, reverse=True)
    print(f"{'operator':>56} {'self ms/step':>13} {'share':>7} {'calls/step':>11}")
    for e in ops[:k]:
        t = e.self_cpu_time_total / 1000 / n_steps
        print(f"{e.key[:56]:>56} {t:13.1f} {t / step_ms:7.1%} {e.count / n_steps:11.0f}")


# ---------------------------------------------------------------------------------------------------- main
def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: torch's current)")
    ap.add_argument("--dataset", default=None, help="settings.ini dataset (default: the study's)")
    ap.add_argument("--model", default=None, help="model arm (default: the study's)")
    ap.add_argument("--backbone-a", default=None, help="default: the settings'")
    ap.add_argument("--backbone-b", default=None, help="default: the settings'")
    ap.add_argument("--image-size", type=int, default=None, help="default: the settings' (48)")
    ap.add_argument("--batch", type=int, default=None, help="default: the settings' batch_size (64)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--amp", action="store_true", help="bf16 autocast for the measured step (the peak in bf16 too)")
    ap.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=None,
                    help="memory format of the measured step (default: as the fit loop: channels-last on CPU and CUDA)")
    ap.add_argument("--data", choices=("auto", "synthetic"), default="auto",
                    help="the batches of the profile: the dataset's file when present (auto), or the synthetic set")
    ap.add_argument("--peak-size", type=int, default=3072, help="n of the n × n float32 matmul (default 3072)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--profile-steps", type=int, default=3)
    ap.add_argument("--no-fixes", action="store_true", help="skip parts 4 and 5 (channels-last, bf16, AdamW implementations)")
    ap.add_argument("--quick", action="store_true", help="smoke test: 2 repeats, 1 warm-up, 1 profiled step, 1024² peak")
    a = ap.parse_args(argv)
    if a.quick: a.repeats, a.warmup, a.profile_steps, a.peak_size = 2, 1, 1, min(a.peak_size, 1024)
    if a.threads: torch.set_num_threads(a.threads)
    over = {k: v for k, v in dict(model=a.model, backbone_a=a.backbone_a, backbone_b=a.backbone_b,
                                  image_size=a.image_size, batch_size=a.batch).items() if v is not None}
    cfg = load_settings(a.dataset, overrides=over)
    dev = get_device(a.device)
    cl = dev.type in CHANNELS_LAST_DEVICES if a.channels_last is None else a.channels_last
    batch, size = cfg["batch_size"], cfg["image_size"]
    print(f"device={dev} threads={torch.get_num_threads()} torch={torch.__version__} "
          f"cpu_capability={torch.backends.cpu.get_cpu_capability()} model={cfg['model']} "
          f"backbones={cfg['backbone_a']}+{cfg['backbone_b']} image={size} batch={batch} "
          f"channels_last={cl} amp={'bf16' if a.amp else 'off'} repeats={a.repeats}")
    out = {}

    print(f"\n1. the machine's dense-matmul peak ({a.peak_size}² torch.mm, {torch.get_num_threads()} threads)")
    peak32, s32 = matmul_peak(a.peak_size, torch.float32, dev, max(a.repeats, 3), a.warmup)
    print(f"float32 peak: {peak32 / 1e9:.1f} GFLOP/s  ({s32 * 1000:.1f} ms per mm)")
    peak = peak32
    if a.amp:
        peak16, s16 = matmul_peak(a.peak_size, torch.bfloat16, dev, max(a.repeats, 3), a.warmup)
        print(f"bfloat16 peak: {peak16 / 1e9:.1f} GFLOP/s  ({s16 * 1000:.1f} ms per mm); the bf16 step is compared with it")
        peak = peak16
    out["peak_flops"] = peak

    print("\n2. achieved FLOP/s of one training step (forward + loss + backward + AdamW step)")
    seed_everything(0)
    bundle, src = load_bundle(cfg, a.data, batch)
    loaders = make_loaders(bundle, batch, seed=0, num_workers=cfg.get("num_workers") or 0)
    xb, yb = next(iter(loaders["train"]))
    if len(yb) < batch: raise SystemExit(f"the training set has fewer than {batch} images: lower --batch")
    model = model_from_settings(cfg, len(bundle.classes))
    init = copy.deepcopy(model.state_dict())
    step = Step(model, cfg, dev, cl, a.amp)
    x, y = to_device(xb, dev, cl), yb.to(dev).long()
    fl = count_flops(step, x, y)
    total, fwd_total, fwd_per = fl["total"], fl["forward"], fl["forward_per_module"]
    t = time_interleaved({"train step": lambda: step(x, y)}, a.repeats, a.warmup, dev)
    report(t)
    st = t["train step"]["median"]
    achieved = total / st
    out.update(step_flops=total, step_s=st, achieved_flops=achieved, fraction=achieved / peak)
    print(f"counted FLOPs per step: {total / 1e9:.2f} G (forward {fwd_total / 1e9:.2f} G, backward "
          f"{(total - fwd_total) / 1e9:.2f} G; batch {batch}, data: {src})")
    if fl["stock"] != total:
        print(f"  (torch's stock formulas give {fl['stock'] / 1e9:.2f} G: they count a grouped convolution's weight "
              f"gradient `groups` times over; the corrected count is used)")
    print(f"achieved: {achieved / 1e9:.2f} GFLOP/s over {st * 1000:.1f} ms per step")
    print(f"fraction_of_peak: {achieved / peak:.4f}  ({achieved / 1e9:.2f} / {peak / 1e9:.1f} GFLOP/s)")

    print(f"\n3. where a step's time goes (torch.profiler, CPU activities, {a.profile_steps} step(s) after one warm-up)")
    prof, parts = profile_steps(step, cfg, loaders["train"], a.profile_steps, dev)
    ms = part_table(prof, step.model, parts, a.profile_steps, fwd_per, fwd_total, peak)
    step_ms = {e.key: e for e in prof.key_averages()}["step"].cpu_time_total / 1000 / a.profile_steps
    print(f"(the same step without the profiler: {st * 1000:.1f} ms; forward FLOP/s are forward FLOPs over the part's "
          f"forward time; the backward's {(total - fwd_total) / 1e9:.2f} GFLOPs over its {ms['backward']:.1f} ms: "
          f"{(total - fwd_total) / (ms['backward'] / 1000) / 1e9:.2f} GFLOP/s)")
    print("\ntop 5 operators by self CPU time")
    top_ops(prof, a.profile_steps, step_ms, 5, skip={"step", "forward", "loss", "backward", "optimizer step",
                                                      "data loading", *parts})
    out["parts_ms"] = ms

    if not a.no_fixes:
        print("\n4. candidate fixes: channels-last vs contiguous, bf16 autocast vs float32 (training step, interleaved)")
        variants = {}
        for fmt in (True, False):
            for amp in (False, True):
                m = model_from_settings(cfg, len(bundle.classes)); m.load_state_dict(init)
                s = Step(m, cfg, dev, fmt, amp)
                xv = to_device(xb, dev, fmt)
                name = f"{'channels_last' if fmt else 'contiguous'} {'bf16' if amp else 'fp32'}"
                variants[name] = (lambda s=s, xv=xv: s(xv, y))
        r = time_interleaved(variants, a.repeats, a.warmup, dev)
        report(r, width=20)
        med = {k: v["median"] for k, v in r.items()}
        for k in variants: print(f"{k:>20}: {batch / med[k]:7.1f} img/s, {total / med[k] / 1e9:7.2f} GFLOP/s counted")
        ratios = {"channels_last speedup (fp32)": med["contiguous fp32"] / med["channels_last fp32"],
                  "channels_last speedup (bf16)": med["contiguous bf16"] / med["channels_last bf16"],
                  "bf16 speedup (channels_last)": med["channels_last fp32"] / med["channels_last bf16"],
                  "bf16 speedup (contiguous)": med["contiguous fp32"] / med["contiguous bf16"]}
        for k, v in ratios.items(): print(f"{k}: {v:.2f}")
        best = min(med, key=med.get)
        print(f"fastest: {best} ({med[best] * 1000:.1f} ms); "
              f"against the fit loop's default ({'channels_last' if cl else 'contiguous'} fp32): "
              f"{med[('channels_last' if cl else 'contiguous') + ' fp32'] / med[best]:.2f}x")
        out.update(ratios)

        print("\n5. the optimizer step alone: AdamW as the fit loop builds it (per-parameter loop on the CPU) vs foreach vs fused")
        m = model_from_settings(cfg, len(bundle.classes)).to(dev); m.load_state_dict(init)
        if cl: m.to(memory_format=torch.channels_last)
        F.cross_entropy(m(x).float(), y).backward()
        kw = dict(lr=cfg["lr"], weight_decay=cfg["weight_decay"])
        opts = {"default": torch.optim.AdamW(m.parameters(), **kw),
                "foreach": torch.optim.AdamW(m.parameters(), foreach=True, **kw),
                "fused": torch.optim.AdamW(m.parameters(), fused=True, **kw)}
        r = time_interleaved({k: o.step for k, o in opts.items()}, a.repeats * 2, a.warmup, dev)
        report(r, width=20)
        for k in ("foreach", "fused"):
            out[f"adamw {k} speedup"] = r["default"]["median"] / r[k]["median"]
            print(f"adamw {k} speedup: {out[f'adamw {k} speedup']:.2f}")
    return out


if __name__ == "__main__":
    main()
