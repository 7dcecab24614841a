"""Benchmarks: the project's endpoints against a lean floor app, the engine against PyTorch.

`python -m bench` (or `make bench`) runs them all and prints a table; see bench/README.md.
"""
