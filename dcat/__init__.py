"""A Jupyter-first, reproducible study of DCAT: dual cross-attention fusion of EfficientNet-B4 and ResNet34 for radiological image classification, with MC-dropout uncertainty."""

__version__ = "0.1.0"
