"""dcat: a reproducible study of dual cross-attention fusion for radiological image classification."""
__version__ = "0.1.0"
