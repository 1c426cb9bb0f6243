"""Data loading: images pre-resized once into a cached uint8 tensor with batched augmentation (what dcat.data does)
against the usual per-image pipeline (PIL image -> Resize -> RandomAffine -> ToTensor -> Normalize every step).
Prints the time of one training epoch for each and their ratio, measured in one run, plus DataLoader workers.

    python bench/data_loading.py --npz ../shared/data/pneumoniamnist.npz --image-size 48
"""
import argparse, sys, time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms as T

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dcat.data import IMAGENET_MEAN, IMAGENET_STD, load_npz

from dcat.loaders import make_loaders


class PerImage(Dataset):
    "The common baseline: decode/resize/augment each image on every access."
    def __init__(self, images: np.ndarray, labels: np.ndarray, size: int):
        self.images, self.labels = images, labels
        self.tf = T.Compose([T.Resize((size, size)), T.Grayscale(3),
                             T.RandomAffine(10, translate=(0.05, 0.05), scale=(0.9, 1.1)),
                             T.ColorJitter(0.1, 0.1), T.ToTensor(), T.Normalize(IMAGENET_MEAN, IMAGENET_STD)])
    def __len__(self): return len(self.labels)
    def __getitem__(self, i): return self.tf(Image.fromarray(self.images[i])), int(self.labels[i])


def epoch_time(loader) -> float:
    t0 = time.perf_counter()
    for x, y in loader: pass
    return time.perf_counter() - t0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--npz", required=True)
    ap.add_argument("--image-size", type=int, default=48)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--workers", type=int, nargs="*", default=[0, 2])
    a = ap.parse_args(argv)
    raw = np.load(a.npz)
    imgs, labels = raw["train_images"], raw["train_labels"].reshape(-1)
    t0 = time.perf_counter(); bundle = load_npz(a.npz, a.image_size); t_cache = time.perf_counter() - t0
    print(f"{len(labels)} training images, {a.image_size} px, batch {a.batch}, threads {torch.get_num_threads()}")
    print(f"one-off cache build (load + resize all splits + sha256): {t_cache:.2f} s")
    res = {}
    for w in a.workers:
        cached = make_loaders(bundle, a.batch, seed=0, num_workers=w)["train"]
        naive = DataLoader(PerImage(imgs, labels, a.image_size), batch_size=a.batch, shuffle=True, num_workers=w)
        epoch_time(cached); epoch_time(naive)                   # warm up (workers, caches)
        tc = min(epoch_time(cached) for _ in range(2)); tn = min(epoch_time(naive) for _ in range(2))
        res[w] = (tc, tn)
        print(f"workers={w}: cached+batched augmentation {tc:.2f} s/epoch, per-image pipeline {tn:.2f} s/epoch, "
              f"speedup {tn / tc:.1f}x")
    return res


if __name__ == "__main__":
    main()
