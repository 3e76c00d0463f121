"""antifit: fight overfitting when fine-tuning language models on small datasets."""

__version__ = "0.1.0"
