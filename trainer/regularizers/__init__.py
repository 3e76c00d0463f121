"""Regularizers, each a small unit with a test of its math (tests/trainer)."""
