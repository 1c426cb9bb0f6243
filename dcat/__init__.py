"""A Jupyter-first, reproducible study of DCAT: dual cross-attention fusion of EfficientNet-B4 and ResNet34 for radiological image classification, with MC-dropout uncertainty.

Modules:

- `dcat.train`: The fit loop: AdamW, warmup + cosine schedule, mixed precision on GPU, early stopping on validation AUC, atomic checkpoints, exact resume after a crash, and a guard against non-finite losses.
- `dcat.uncertainty`: MC-dropout prediction, entropy and mutual information, calibration, risk–coverage, conformal prediction sets and Grad-CAM explanations."""

__version__ = "0.1.0"
