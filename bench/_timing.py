"""Shared timing for the benchmarks: warm up, then time several callables interleaved (so drift and other load hit
them alike) and report medians. On CUDA the device is synchronised around each call."""
import statistics, time
from typing import Callable

import torch


def time_interleaved(runs: dict[str, Callable[[], object]], repeats: int = 5, warmup: int = 2,
                     device: torch.device | str = "cpu") -> dict[str, dict[str, float]]:
    "Median, min and max seconds of each callable in `runs`, timed in turn `repeats` times after `warmup` calls each."
    cuda = torch.device(device).type == "cuda"
    for f in runs.values():
        for _ in range(warmup): f()
    times = {k: [] for k in runs}
    for _ in range(repeats):
        for k, f in runs.items():
            if cuda: torch.cuda.synchronize()
            t0 = time.perf_counter(); f()
            if cuda: torch.cuda.synchronize()
            times[k].append(time.perf_counter() - t0)
    return {k: {"median": statistics.median(v), "min": min(v), "max": max(v)} for k, v in times.items()}


def report(stats: dict[str, dict[str, float]], width: int = 24) -> None:
    "Print one line per timed callable."
    for k, s in stats.items():
        print(f"{k:>{width}}: median {s['median'] * 1000:9.1f} ms  (min {s['min'] * 1000:.1f}, max {s['max'] * 1000:.1f})")
