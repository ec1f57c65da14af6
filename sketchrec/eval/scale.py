"""EMDE at scale (benchmarks/emde_scale.py): streaming training on synthetic logs of growing size,
each size measured in a fresh process (so its peak RSS is its own), and the check that the
streaming trainer matches the in-memory one on real data.

Models are passed in as factories (``make_model(**overrides) -> estimator``): evaluation never
imports a model (the import contracts), it only calls `fit`, `recommend` and `profile`.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np

from sketchrec.data.stream import SessionStream, write_session_log
from sketchrec.data.synthetic import generate_sessions
from sketchrec.eval.report import markdown_table, peak_rss_mib, run_python

#: n_items of the synthetic logs: ~1 item per 10 events up to 1M items (a catalogue grows with its log)
def items_for(n_events: int) -> int:
    return int(min(1_000_000, max(10_000, n_events // 10)))


def stream_quality(make_model, bench, mode: str, log_dir: Path, buffer_events: int = 200_000,
                   progress: bool = False) -> dict:
    """Fit `make_model()` on a session benchmark's training rows, in memory (mode "memory") or
    from those rows written as a Parquet log and read back as a `SessionStream` (mode "stream",
    buffers of `buffer_events` events: the row-group order and the pairs inside a buffer are
    shuffled), and evaluate on its test pairs. Returns metrics, fit seconds, peak RSS."""
    from sketchrec.eval.protocols import evaluate_session_benchmark
    if mode not in ("memory", "stream"):
        raise ValueError(f"mode must be 'memory' or 'stream', got {mode!r}")
    model = make_model()
    t0 = time.perf_counter()
    if mode == "stream":
        write_session_log(bench.train, log_dir, sessions_per_group=10_000)
        model.fit(SessionStream(log_dir, buffer_events=buffer_events, n_items=bench.train.n_items))
    else:
        model.fit(bench.train)
    fit_s = time.perf_counter() - t0
    result = evaluate_session_benchmark(model, bench, fit=False, progress=progress)
    return {"mode": mode, "metrics": result.metrics, "fit_s": fit_s, "score_s": result.score_seconds,
            "history": model.history_, "peak_rss_mib": peak_rss_mib(), "params": model.get_params()}


def save(path: Path, data: dict) -> None:
    """Write one result as JSON (its folder made)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1, default=float))
    print(f"written {path}")
