"""Result tables: Markdown for docs/benchmarks, rich tables for the terminal, and the plumbing
every benchmark script shares (common flags, the machine header, Markdown tables, mean ± std
cells, timings, peak RSS, peer programs in their own interpreter, writing a page and its data).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import time
from datetime import datetime, timezone
from pathlib import Path

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


def page_head(title: str, command: str, machine: str = "") -> str:
    """The head of a results page as Markdown paragraphs: the title, `machine_line()` followed by
    `machine` (e.g. "; total 12 s"), and "Command: " with the reproducing `command` (see `command`)."""
    return f"# {title}\n\n{machine_line()}{machine}\n\nCommand: {command}\n\n"


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


def best_seconds(fn, repeats: int = 5, warmup: int = 1) -> float:
    """Best (minimum) wall time of `fn()` over `repeats` calls after `warmup` untimed ones."""
    for _ in range(warmup):
        fn()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


# -- benchmark scripts -------------------------------------------------------------------

#: the flags benchmark scripts share: name -> (argparse keywords, help)
_COMMON_FLAGS = {
    "datasets": (dict(nargs="+"), "datasets from the registry (`sketchrec datasets list`)"),
    "dataset": ({}, "a dataset from the registry (`sketchrec datasets list`)"),
    "seeds": (dict(nargs="+", type=int), "seeds (results are mean ± std over them)"),
    "seed": (dict(type=int), "seed"),
    "threads": (dict(type=int), "compute threads (None: all cores)"),
    "epochs": (dict(type=int), "training epochs"),
    "output": (dict(type=Path), "the Markdown page written (its data beside it as .json)"),
}


def benchmark_parser(doc: str, **defaults) -> argparse.ArgumentParser:
    """An argument parser whose help is the script's docstring, with the shared flags named in
    `defaults` (datasets, dataset, seeds, seed, threads, epochs, output) at those defaults.

    >>> benchmark_parser(__doc__, datasets=["diginetica"], threads=2).parse_args([]).threads
    2
    """
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    for name, default in defaults.items():
        if name not in _COMMON_FLAGS:
            raise ValueError(f"no shared flag {name!r}; shared flags: {', '.join(_COMMON_FLAGS)}")
        kwargs, help_text = _COMMON_FLAGS[name]
        parser.add_argument(f"--{name}", default=default, help=f"{help_text} (default: {default})", **kwargs)
    return parser


def timed(fn, *args, **kwargs):
    """`fn(*args, **kwargs)` and its wall time in seconds: (result, seconds).

    >>> timed(sum, [1, 2])[0]
    3
    """
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t0


def read_json(path: str | Path, default=None):
    """The JSON value in `path` (e.g. an earlier run's results, to reuse or extend), or `default`
    when there is no such file."""
    path = Path(path)
    return json.loads(path.read_text()) if path.exists() else default


def cached_json(path: str | Path, params):
    """The saved result of a resumable step in `path` if it was computed with these `params` (its
    "params" field), else None (none saved, or computed with other settings)."""
    result = read_json(path)
    return result if result is not None and result.get("params") == params else None


def core_pins() -> tuple[list[str], list[str], str]:
    """Command prefixes that pin a server to core 0 and its load generator to core 1 (`taskset`),
    so that the load generator's own CPU does not slow the server down, and what a page says
    about it; no pins without taskset or with one core."""
    import shutil
    if shutil.which("taskset") is None or (os.cpu_count() or 1) < 2:
        return [], [], "server and load generator share the cores (no taskset or one core)"
    return ["taskset", "-c", "0"], ["taskset", "-c", "1"], "server pinned to core 0, locust to core 1 (`taskset`)"


def command(script: str, **flags) -> str:
    """A page's reproducing command, in backticks: `python benchmarks/SCRIPT.py --flag value ...`
    with the flags in the order given (underscores as dashes; lists joined by spaces; True as the
    bare flag; None and False left out).

    >>> command("emde_topk", datasets=["a", "b"], epochs=None, bf16=True, seed=0)
    '`python benchmarks/emde_topk.py --datasets a b --bf16 --seed 0`'
    """
    parts = [f"python benchmarks/{script}.py"]
    for name, value in flags.items():
        if value is None or value is False:
            continue
        flag = "--" + name.replace("_", "-")
        parts.append(flag if value is True else f"{flag} " + (" ".join(map(str, value))
                                                              if isinstance(value, (list, tuple)) else str(value)))
    return "`" + " ".join(parts) + "`"


def code_version(root: str | Path, patterns) -> str:
    """A short hash of the files under `root` matching the glob `patterns` (e.g. a model's source),
    so that an expensive result is reused only while the code it ran with is unchanged."""
    import hashlib
    digest = hashlib.sha256()
    for pattern in patterns:
        for path in sorted(Path(root).glob(pattern)):
            digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def earlier_run(old: dict | None, run_args: dict, meta, code: str | None = None, ignore=()) -> dict | None:
    """An earlier expensive run to reuse instead of running it again, or None: `old` (a result
    recorded with its `args`, `meta`, `code` and `when`) if it ran with the same code version and,
    but for the `ignore`d ones, the same arguments on the same data (`meta`). Returned marked
    `reused`, with today's arguments and meta.

    >>> earlier_run({"args": {"epochs": 3, "batches": 5}, "meta": 1, "when": "then"}, {"epochs": 3}, 1,
    ...             ignore=("batches",))["reused"]
    True
    """
    if old is None or old.get("code") != code:
        return None
    same_args = ({k: v for k, v in old.get("args", {}).items() if k not in ignore}
                 == {k: v for k, v in run_args.items() if k not in ignore})
    if same_args and old.get("meta") == meta:
        return {"when": "an earlier run", **old, "args": run_args, "meta": meta, "reused": True}
    return None


def module_versions(*names: str) -> dict:
    """{module: its __version__ ("?" without one, None when it is not installed)}, for a page's
    header when optional peer libraries are compared."""
    out = {}
    for name in names:
        try:
            out[name] = getattr(__import__(name), "__version__", "?")
        except ImportError:
            out[name] = None
    return out


def utc_now() -> str:
    """The time now, as results headers show it: `2026-11-23 19:44 UTC`."""
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())


def host_line() -> str:
    """The short results header: time, machine and core count."""
    return f"{utc_now()}; {platform.machine()}, {os.cpu_count()} cores"


def peak_rss_mib() -> float:
    """Peak resident set size of this process so far, MiB (ru_maxrss)."""
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def markdown_table(head: list[str], rows) -> list[str]:
    """Lines of a Markdown table: the header, the rule, one line per row (cells as given)."""
    return (["| " + " | ".join(map(str, head)) + " |", "|" + "---|" * len(head)]
            + ["| " + " | ".join(map(str, row)) + " |" for row in rows])


def mean_std(values, scale: float = 100.0, digits: int = 2) -> str:
    """`mean ± std` of values x scale (std with ddof=1), or just the value when there is one."""
    import numpy as np
    v = np.asarray(values, dtype=np.float64) * scale
    return f"{v.mean():.{digits}f} ± {v.std(ddof=1):.{digits}f}" if len(v) > 1 else f"{v.mean():.{digits}f}"


def seeds_mean_std(per_seed: list[dict], keys) -> dict:
    """{key: (mean, std)} of each metric over seeds, from one dict of metrics per seed (std with
    ddof=1; 0.0 for one seed).

    >>> seeds_mean_std([{"HR": 0.5}, {"HR": 0.7}], ["HR"])["HR"][0]
    0.6
    """
    import numpy as np
    return {k: (float(np.mean([m[k] for m in per_seed])),
                float(np.std([m[k] for m in per_seed], ddof=1)) if len(per_seed) > 1 else 0.0) for k in keys}


def write_page(path: Path, text: str, data=None, quiet: bool = False, json_default=float, echo: bool = False) -> Path:
    """Write a results page (Markdown, ending with a newline) and, with `data`, its results as
    JSON beside it (same name, .json; values JSON cannot hold go through `json_default`).
    `echo` prints the page instead of the "written" line. Returns the page's path."""
    if echo:
        print(text.removesuffix("\n"))
        quiet = True
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text if text.endswith("\n") else text + "\n")
    if data is not None:
        path.with_suffix(".json").write_text(json.dumps(data, indent=1, default=json_default))
    if not quiet:
        print(f"written {path}")
    return path


def run_python(python: str | Path, argv, *, threads: int | None = None, env: dict | None = None,
               cwd: str | Path | None = None) -> dict:
    """Run ``python *argv`` (a script and its arguments, or ``-c CODE ...``) in a fresh process,
    e.g. a peer library's own virtualenv, with `threads`: every thread pool (OpenMP, MKL, numba,
    rayon) limited to that many threads. Returns the JSON object it prints on its last line; the
    child's peak RSS (ru_maxrss) is its own."""
    environment = {**os.environ, **(env or {})}
    if threads is not None:
        environment.update({name: str(threads) for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS",
                                                            "NUMBA_NUM_THREADS", "RAYON_NUM_THREADS")})
    if cwd is not None:
        Path(cwd).mkdir(parents=True, exist_ok=True)
    out = subprocess.run([str(python), *map(str, argv)], capture_output=True, text=True, env=environment, cwd=cwd)
    if out.returncode != 0:
        raise RuntimeError(f"{python} failed:\n{out.stderr[-4000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def copy_bandwidth_gbs(size_mb: int = 1024, repeats: int = 5) -> float:
    """Machine reference: best of `repeats` numpy copies of size_mb (bytes read + written per second)."""
    import numpy as np
    a = np.ones(size_mb * 2**20 // 4, dtype=np.float32)
    b = np.empty_like(a)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        np.copyto(b, a)
        best = min(best, time.perf_counter() - t0)
    return 2 * a.nbytes / best / 1e9


def session_run_sections(results: dict, metrics) -> list[str]:
    """benchmarks/emde_sessions.py's page body: per dataset, a table of the baselines (one run each,
    their validated settings) and EMDE (mean ± std over its seed runs, the epoch count chosen on
    validation), then EMDE's seconds per epoch, peak RSS and validation MRR@20 by epoch. `results`:
    dataset -> {"baselines": {name: {metrics, fit_s, score_s, params}}, "emde": {epochs, validation, runs}}."""
    import numpy as np

    from sketchrec.training import valid_metric
    parts = []
    for name, res in results.items():
        runs, n = res["emde"]["runs"], res["emde"]["runs"][0]["n_pairs"]
        rows = [[model_name, *[f"{100 * r['metrics'][m]:.2f}" for m in metrics], f"{r['fit_s']:.1f}",
                 f"{r['score_s']:.1f}", f"{n / r['score_s']:,.0f}",
                 ", ".join(f"{k}={v}" for k, v in r["params"].items())] for model_name, r in res["baselines"].items()]
        score_s = np.mean([r["score_s"] for r in runs])
        rows.append(["**EMDE**", *[mean_std([r["metrics"][m] for r in runs]) for m in metrics],
                     f"{np.mean([r['fit_s'] for r in runs]):.0f}", f"{score_s:.1f}", f"{n / score_s:,.0f}",
                     f"epochs={res['emde']['epochs']} (validation), seeds {[r['seed'] for r in runs]}"])
        epoch_s = np.mean([s for r in runs for s in r["epoch_s"]])
        val = " → ".join(f"{100 * valid_metric(h, 'MRR@20'):.2f}" for h in res["emde"]["validation"])
        parts.append("\n".join([f"## {name}\n", *markdown_table(
            ["model", *metrics, "fit s", "score s", "prefixes/s", "settings"], rows),
            f"\nEMDE: {epoch_s:.0f} s per training epoch; peak RSS {max(r['peak_rss_mib'] for r in runs):,.0f} "
            f"MiB; validation MRR@20 by epoch: {val}.\n"]))
    return parts


def topk_sections(results: dict, metrics) -> list[str]:
    """benchmarks/emde_topk.py's page body: per dataset, one row per model with mean ± std (in %) of
    `metrics`, users, fit / score seconds and what was chosen on validation. `results`: dataset ->
    model -> {"metrics": `seeds_mean_std`, "users", "fit_s", "score_s", "chosen": {setting: value}}."""
    parts = []
    for name, res in results.items():
        rows = [[variant, *[f"{100 * r['metrics'][m][0]:.2f} ± {100 * r['metrics'][m][1]:.2f}" for m in metrics],
                 str(r["users"]), f"{r['fit_s']:.1f}", f"{r['score_s']:.2f}",
                 ", ".join(f"{k}={v}" for k, v in r["chosen"].items()) or "-"] for variant, r in res.items()]
        parts.append("\n".join([f"## {name}\n", *markdown_table(
            ["model", *metrics, "users", "fit s", "score s", "chosen on validation"], rows)]) + "\n")
    return parts
