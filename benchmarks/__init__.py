"""Benchmark scripts: each one runs a library protocol and writes a results page under
docs/benchmarks/ (raw per-run results that are not pages go to benchmarks/results/).

    python -m benchmarks.session_baselines --datasets diginetica   # or: python benchmarks/session_baselines.py
"""
