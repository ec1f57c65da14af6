"""Result tables: Markdown for docs/benchmarks, rich tables for the terminal."""

from __future__ import annotations

import platform
from datetime import datetime, timezone

from sketchrec.eval.protocols import EvalResult


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 10 else f"{value:,.1f}"
    return str(value)


def results_markdown(results: list[EvalResult], metrics: list[str], percent: bool = True) -> str:
    """One row per result: dataset, model, metrics (in % if `percent`), fit and scoring time."""
    head = ["dataset", "model", *metrics, "fit s", "score s", "prefixes/s", "params"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in results:
        vals = [f"{100 * r.metrics[m]:.2f}" if percent else _fmt(r.metrics[m]) for m in metrics]
        params = ", ".join(f"{k}={v}" for k, v in r.params.items() if k not in ("batch_size",))
        lines.append("| " + " | ".join([r.dataset, r.model, *vals, f"{r.fit_seconds:.1f}",
                                         f"{r.score_seconds:.1f}", f"{r.rows_per_second:,.0f}",
                                         params]) + " |")
    return "\n".join(lines)


def results_rich_table(results: list[EvalResult], metrics: list[str], title: str = ""):
    from rich.table import Table
    table = Table(title=title)  # one dataset per table: its name is in the title
    for col in ["model", *metrics, "fit s", "score s", "prefixes/s"]:
        table.add_column(col, justify="left" if col == "model" else "right")
    for r in results:
        table.add_row(r.model, *[f"{100 * r.metrics[m]:.2f}" for m in metrics],
                      f"{r.fit_seconds:.1f}", f"{r.score_seconds:.1f}", f"{r.rows_per_second:,.0f}")
    return table


def machine_line() -> str:
    """Machine (CPU model and vector extensions), Python and library versions, for the header
    of a results file: a ratio measured on one CPU may not hold on another."""
    import numpy
    import scipy

    import sketchrec
    try:
        import psutil
        mem = f"{psutil.virtual_memory().total / 2**30:.0f} GiB RAM"
        cores = psutil.cpu_count(logical=True)
    except ImportError:  # pragma: no cover
        mem, cores = "? RAM", "?"
    from sketchrec.precision import cpu_summary
    return (f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M UTC}; {platform.machine()}, {cores} cores, "
            f"{mem}; CPU {cpu_summary()}; Python {platform.python_version()}, numpy {numpy.__version__}, "
            f"scipy {scipy.__version__}, sketchrec {sketchrec.__version__}")


def median_seconds(fn, repeats: int = 5, warmup: int = 1) -> float:
    """Median wall time of `fn()` over `repeats` calls after `warmup` untimed ones (for benchmarks)."""
    import statistics
    import time
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)
