"""Benchmarks: each prints its figures side by side; run one with ``python -m benchmarks.<name>``."""
