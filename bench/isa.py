"""Pinning the CPU kernels' instruction set: what it changes and what it costs, measured in one run.

torch picks its CPU kernels at run time from the widest instruction set the CPU has (AVX-512 here, AVX2 on older x86
machines), and MKL and oneDNN do the same; kernels of different widths accumulate in different orders, so the same
run gives other last bits, and after a few hundred optimiser steps other weights and another test AUC. The setting
`cpu_isa` pins all three (`ATEN_CPU_CAPABILITY`, `MKL_CBWR`, `ONEDNN_MAX_CPU_ISA`, `dcat.config.compute_env`) in the
process that trains. This script, on one machine:

1. **speed**: the default DCAT training step (EfficientNet-B4 + ResNet34, 48 px, batch 64, channels-last, AdamW) in
   a fresh process per instruction set (the pins must be set before torch starts), rounds interleaved so drift hits
   every variant alike; median step time and the ratio to the native kernels;
2. **bits**: whether the weights after those steps are bit-identical across variants (a checksum of every parameter);
3. **a tiny run** (`--run`): `dcat train pneumoniamnist` on 1,024 training images at 32 px, 4 epochs, small backbones,
   once per variant; the test AUC (a ranking: blind to small changes) and the last epoch's training loss to full
   precision. Pinned to the CPU's own widest set, a run should equal the native run (then
   a machine with that set reproduces it); pinned to a narrower set, it is what a machine whose widest set that is
   would compute natively, which is how a committed number can be reproduced on a mix of x86 machines.

    python bench/isa.py --threads 1 --run
"""
import argparse, json, os, statistics, subprocess, sys, tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

STEP = r"""
import json, sys, time, hashlib, warnings
import torch, torch.nn.functional as F
warnings.filterwarnings("ignore")
from dcat.config import load_settings
from dcat.model import model_from_settings
steps, threads, size, batch = map(int, sys.argv[1:5])
torch.set_num_threads(threads)
cfg = load_settings("pneumoniamnist", overrides={"image_size": size})
torch.manual_seed(0)
net = model_from_settings(cfg, 2).train().to(memory_format=torch.channels_last)
opt = torch.optim.AdamW(net.parameters(), lr=1e-3, weight_decay=0.05)
g = torch.Generator().manual_seed(0)
x = torch.randn(batch, 3, size, size, generator=g).contiguous(memory_format=torch.channels_last)
y = torch.randint(0, 2, (batch,), generator=g)
times = []
for i in range(steps + 2):
    t0 = time.perf_counter()
    loss = F.cross_entropy(net(x), y)
    opt.zero_grad(set_to_none=True); loss.backward(); opt.step()
    if i >= 2: times.append(time.perf_counter() - t0)
h = hashlib.sha256(b"".join(p.detach().double().numpy().tobytes() for p in net.parameters())).hexdigest()[:16]
print(json.dumps({"times": times, "capability": torch.backends.cpu.get_cpu_capability(), "weights": h,
                  "loss": loss.item()}))
"""

RUN = ["train", "pneumoniamnist", "--quiet", "-p", "max_train=1024", "-p", "image_size=32", "-p", "epochs=4",
       "-p", "backbone_a=efficientnet_b0", "-p", "backbone_b=resnet18", "-p", "fusion_dim=32", "-p", "mc_samples=5",
       "-p", "min_steps=0", "-p", "ood_set="]


def env_for(isa: str, threads: int) -> dict:
    from dcat.config import compute_env
    env = {k: v for k, v in os.environ.items() if k not in ("ATEN_CPU_CAPABILITY", "MKL_CBWR", "ONEDNN_MAX_CPU_ISA")}
    return {**env, **compute_env({"cpu_isa": isa, "torch_threads": threads}), "PYTHONWARNINGS": "ignore"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--isa", nargs="+", default=["native", "avx2", "avx512"])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--image-size", type=int, default=48)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--run", action="store_true", help="also a tiny dcat train per variant (about a minute each)")
    ap.add_argument("--no-speed", action="store_true", help="skip parts 1 and 2 (the timed steps)")
    a = ap.parse_args()
    import torch
    print(f"torch {torch.__version__}; CPU capability (native) {torch.backends.cpu.get_cpu_capability()}; "
          f"{a.threads} thread(s); {a.steps} steps x {a.rounds} rounds, batch {a.batch} at {a.image_size} px")
    res = {isa: {"times": [], "weights": set(), "capability": None} for isa in a.isa}
    for r in range(0 if a.no_speed else a.rounds):
        for isa in a.isa:
            out = subprocess.run([sys.executable, "-c", STEP, str(a.steps), str(a.threads), str(a.image_size), str(a.batch)],
                                 env=env_for(isa, a.threads), capture_output=True, text=True, cwd=ROOT, check=True)
            rec = json.loads(out.stdout.strip().splitlines()[-1])
            res[isa]["times"] += rec["times"]
            res[isa]["weights"].add(rec["weights"])
            res[isa]["capability"] = rec["capability"]
    base = statistics.median(res[a.isa[0]]["times"] or [1])
    if not a.no_speed: print(f"{'variant':>8} {'kernels':>8} {'median step':>12} {'vs ' + a.isa[0]:>10}  weights after {a.steps + 2} steps")
    for isa, v in res.items() if not a.no_speed else ():
        m = statistics.median(v["times"])
        print(f"{isa:>8} {v['capability']:>8} {m * 1000:9.1f} ms {m / base:10.3f}  {', '.join(sorted(v['weights']))}")
    same = {isa: res[isa]["weights"] == res[a.isa[0]]["weights"] for isa in a.isa[1:]}
    if not a.no_speed: print("bit-identical weights to " + a.isa[0] + ": " + ", ".join(f"{k} {'yes' if v else 'no'}" for k, v in same.items()))
    if not a.run: return
    print("\ntiny run: dcat " + " ".join(RUN))
    aucs, losses = {}, {}
    for isa in a.isa:
        with tempfile.TemporaryDirectory() as d:
            env = {**env_for("native", 0), "DCAT_CHECKPOINTS_DIR": d}
            subprocess.run([str(Path(sys.executable).parent / "dcat"), *RUN, "-p", f"cpu_isa={isa}",
                            "-p", f"torch_threads={a.threads}"], env=env, cwd=ROOT, check=True, capture_output=True)
            rec = json.loads(next(Path(d).rglob("*.metrics.json")).read_text())
            aucs[isa], losses[isa] = rec["metrics"]["auc"], rec["training"]["history"][-1]["train_loss"]
            tb = rec["training"]["trained_by"][0]
            print(f"{isa:>8} ({tb['cpu_capability']}, {tb['torch_threads']} thread(s), train {rec['training']['train_wall_s']:.1f} s):"
                  f" test AUC {aucs[isa]!r}, last training loss {losses[isa]!r}")
    for isa in a.isa[1:]:
        print(f"{isa} - {a.isa[0]}: AUC {aucs[isa] - aucs[a.isa[0]]:+.3e}, training loss {losses[isa] - losses[a.isa[0]]:+.3e}")


if __name__ == "__main__":
    main()
