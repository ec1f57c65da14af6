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
import threading
import time
from pathlib import Path

import numpy as np

from sketchrec.data.stream import SessionStream, write_session_log
from sketchrec.data.synthetic import generate_sessions
from sketchrec.eval.report import markdown_table, peak_rss_mib, run_python
from sketchrec.precision import cpu_summary

#: the network of the scale runs: the `emde-session` preset with hidden 256 (the preset's 1024 costs
#: ~50 core-minutes an epoch at 10M events; the data path measured here does not depend on it)
SCALE_NETWORK = {"hidden": 256}


def items_for(n_events: int) -> int:
    """n_items of a synthetic log of `n_events` events: one item per 50 events, 10k to 1M (a
    catalogue grows with its log; 1M items at 50M events and more)."""
    return int(min(1_000_000, max(10_000, n_events // 50)))


def folder_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in Path(path).glob("*.parquet"))


def measure_size(make_model, n_events: int, work: Path, seed: int = 0, score_sessions: int = 100_000,
                 buffer_events: int = 2_000_000, checkpoint_every: float = 600.0) -> dict:
    """In this process: generate (or reuse) a log of `n_events` events in `work`, fit one streaming
    epoch of `make_model(**SCALE_NETWORK)`, recommend the top 20 for `score_sessions` sessions of the
    log, and write every session's profile to Parquet. Returns the timings, events/s (of the
    training epoch), peak RSS after each phase (MiB: ru_maxrss, monotone) and disk sizes.

    Resumable (a 100M-event epoch takes hours): the fit checkpoints inside the epoch every
    `checkpoint_every` seconds (and its item codes once) under `work`, and every finished phase
    is recorded in ``work/measure.json``; a rerun after a kill carries on from there, the epoch's
    seconds and CPU seconds adding up over the runs, the peak RSS the largest of any run's."""
    progress_file = work / "measure.json"
    done = json.loads(progress_file.read_text()) if progress_file.exists() else {}

    def record(**phase):                 # a finished phase: kept for a rerun after a kill
        done.update(phase)
        out.update(phase)
        save(progress_file, done, quiet=True)

    out = {"events_asked": n_events, "n_items": items_for(n_events), "seed": seed, **done}
    with _PeakWatch(work / "peak_rss.json") as watch:
        if cpu_summary() not in done.get("cpus", []):    # a run resumed on another machine: its timings mix CPUs
            record(cpus=[*done.get("cpus", []), cpu_summary()])
        if "generate_s" not in done:         # a log found on disk: generate_s is then a check only
            reused = (work / "log" / "manifest.json").exists()
            _, generate_s = _timed(generate_sessions, work / "log", n_events, items_for(n_events), seed=seed,
                                   progress=False)
            record(generate_s=generate_s, log_reused=reused)
        stream = SessionStream(work / "log", buffer_events=buffer_events)
        scan, out["scan_s"] = _timed(stream.scan)
        out.update(events=scan.n_events, sessions=scan.n_rows, items_seen=len(scan.item_ids),
                   log_bytes=folder_bytes(work / "log"), rss_after_scan_mib=peak_rss_mib())
        model, fit_s = _timed(make_model(**SCALE_NETWORK).fit, stream, checkpoint=work / "fit.ckpt.npz",
                              checkpoint_every=checkpoint_every)
        if "epoch_s" not in done:
            row = model.history_[0]
            record(fit_s=fit_s, codes_s=model.codes_seconds_, epoch_s=row["seconds"], epoch_cpu_s=row["cpu_seconds"],
                   examples=row["examples"], rss_after_fit_mib=peak_rss_mib(), bf16=model.bf16_)
        out["events_per_s"] = out["events"] / out["epoch_s"]
        out["events_per_cpu_s"] = out["events"] / out["epoch_cpu_s"]
        if "score_s" not in done:
            queries = _first_sessions(stream, score_sessions)
            cpu = time.process_time()
            _, score_s = _timed(_recommend_all, model, queries)
            record(score_s=score_s, score_cpu_s=time.process_time() - cpu, scored=len(queries),
                   rss_after_score_mib=peak_rss_mib())
            del queries
        if "profiles_s" not in done:
            from sketchrec.eval.profiles import write_profiles
            written, profiles_s = _timed(write_profiles, model, stream, work / "profiles.parquet")
            record(profiles_s=profiles_s, profile_rows=written["rows"], profile_bytes=written["bytes"])
            (work / "profiles.parquet").unlink()
        out["peak_rss_mib"] = watch.update()
        return out


class _PeakWatch(threading.Thread):
    """Keeps `file` at the largest peak RSS (MiB) of any process measuring in its folder, checked
    every `every` seconds: the peak of a run killed before its phase was recorded counts too."""

    def __init__(self, file: Path, every: float = 20.0):
        super().__init__(daemon=True)
        self.file, self.every, self._halt = file, every, threading.Event()

    def __enter__(self) -> "_PeakWatch":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self._halt.set()
        self.join()

    def update(self) -> float:
        stored = json.loads(self.file.read_text())["peak_rss_mib"] if self.file.exists() else 0.0
        peak = max(stored, peak_rss_mib())
        if peak > stored:
            save(self.file, {"peak_rss_mib": peak}, quiet=True)
        return peak

    def run(self) -> None:
        while not self._halt.is_set():
            self.update()
            self._halt.wait(self.every)


#: what `measure_peer` measures beside EMDE on the same logs (the other models a user would run there)
PEERS = ("cleora", "vsknn")


def measure_peer(kind: str, make_model, n_events: int, work: Path, seed: int = 0, score_sessions: int = 100_000,
                 buffer_events: int = 2_000_000, cleora_steps: int = 3, cleora_dim: int = 256) -> dict:
    """In this process, on the log of `measure_size` (generated if missing) in `work`:
    kind "vsknn": the log read into memory as `Sessions` (V-SKNN indexes every session), then
    ``make_model().fit`` and the top 20 for the first `score_sessions` sessions;
    kind "cleora": Cleora item vectors (`cleora_steps` iterations, `cleora_dim` dims) of the log's
    session-item graph, streamed over the log (`sketchrec.graph.streaming`; the in-memory graph
    of 10^8 clicks would not fit beside it). Returns timings and peak RSS (MiB)."""
    if kind not in PEERS:
        raise ValueError(f"kind must be one of {PEERS}, got {kind!r}")
    out = {"peer": kind, "events_asked": n_events, "n_items": items_for(n_events), "seed": seed, "cpu": cpu_summary()}
    generate_sessions(work / "log", n_events, items_for(n_events), seed=seed, progress=False)
    stream = SessionStream(work / "log", buffer_events=buffer_events)
    scan, out["scan_s"] = _timed(stream.scan)
    out.update(events=scan.n_events, sessions=scan.n_rows)
    if kind == "cleora":
        from sketchrec.graph.streaming import stream_row_item_cleora
        _, out["fit_s"] = _timed(stream_row_item_cleora, stream.buffers, len(stream), stream.n_items,
                                 cleora_steps, cleora_dim, seed)
        out.update(steps=cleora_steps, dim=cleora_dim, peak_rss_mib=peak_rss_mib())
        return out
    from sketchrec.data.sessions import concat
    sessions, out["load_s"] = _timed(lambda: concat(list(stream.buffers())))
    out["rss_after_load_mib"] = peak_rss_mib()
    model, out["fit_s"] = _timed(make_model().fit, sessions)
    queries = sessions.take(np.arange(min(score_sessions, len(sessions))))
    # V-SKNN scores every item of a batch as a dense (rows, n_items) matrix: batches kept at ~1 GB of it
    # (10,000 rows of 200,000 items took 8.7 GB; of 1M items they would take 40 GB)
    out["score_batch"] = int(max(100, min(10_000, 250_000_000 // stream.n_items)))
    cpu = time.process_time()
    _, out["score_s"] = _timed(_recommend_all, model, queries, out["score_batch"])
    out.update(score_cpu_s=time.process_time() - cpu, scored=len(queries), peak_rss_mib=peak_rss_mib())
    return out


def measure_profiles(make_model, n_users: int, work: Path, seed: int = 0, buffer_events: int = 2_000_000) -> dict:
    """In this process: a synthetic log of `n_users` sessions (users), EMDE's item codes from it
    (`make_model(epochs=0)`: the scan and the Cleora passes, no network training), then every
    user's profile written to Parquet by `write_profiles`. Returns timings, sizes and peak RSS (MiB)."""
    from sketchrec.data.synthetic import DIGINETICA_MEAN_LENGTH
    from sketchrec.eval.profiles import write_profiles
    n_events = int(n_users * DIGINETICA_MEAN_LENGTH)
    out = {"users_asked": n_users, "n_items": items_for(n_events), "seed": seed}
    _, out["generate_s"] = _timed(generate_sessions, work / "log", n_events, items_for(n_events), seed=seed)
    stream = SessionStream(work / "log", buffer_events=buffer_events)
    model, out["codes_s"] = _timed(make_model(epochs=0, **SCALE_NETWORK).fit, stream)
    out.update(users=len(stream), events=stream.scan().n_events, rss_after_codes_mib=peak_rss_mib())
    written, out["profiles_s"] = _timed(write_profiles, model, stream, work / "profiles.parquet")
    out.update(profile_bytes=written["bytes"], nonzeros=written["nonzeros"], peak_rss_mib=peak_rss_mib(), cpu=cpu_summary())
    (work / "profiles.parquet").unlink()
    return out


def _recommend_all(model, queries, batch: int = 10_000) -> None:
    """Top 20 of every query row, `batch` rows at a time (bounded memory: a batch's predicted sketches)."""
    for start in range(0, len(queries), batch):
        model.recommend(queries.take(np.arange(start, min(start + batch, len(queries)))), 20)


def _timed(fn, *args, **kwargs):
    t0 = time.perf_counter()
    result = fn(*args, **kwargs)
    return result, time.perf_counter() - t0


def _first_sessions(stream: SessionStream, n: int):
    """The first `n` sessions of the log (in file order), as in-memory `Sessions`."""
    parts, have = [], 0
    for buf in stream.buffers():
        parts.append(buf.take(np.arange(min(len(buf), n - have))))
        have += len(parts[-1])
        if have >= n:
            break
    from sketchrec.data.sessions import concat
    return concat(parts)


def run_sizes(sizes, child_argv, results: Path, page: Path, threads: int | None = 1, peers=PEERS) -> list[dict]:
    """Measure every size in its own process (`child_argv` + ``--one SIZE``; the JSON it prints),
    smallest first, then each peer of `peers` on that size's log (``--one SIZE --peer KIND``),
    skipping runs whose result file exists (resumable); then write the page and the figure."""
    for n in sorted(sizes):
        for kind, file in ((None, results / f"events_{n}.json"), *((k, results / f"peer_{k}_{n}.json") for k in peers)):
            if not file.exists():
                save(file, run_python(sys.executable, [*child_argv, "--one", n, *(("--peer", kind) if kind else ())],
                                      threads=threads))
    stored = lambda pattern: [json.loads(f.read_text()) for f in sorted(results.glob(pattern))]  # noqa: E731
    runs = sorted(stored("events_*.json"), key=lambda r: r["events"])
    write_scale_page(runs, page, profiles=stored("profiles_*.json"), quality=stored("quality_*.json"),
                     peers=sorted(stored("peer_*.json"), key=lambda r: (r["peer"], r["events"])),
                     other_cpus={d.name: sorted(stored(f"{d.name}/events_*.json"), key=lambda r: r["events"])
                                 for d in sorted(results.iterdir()) if d.is_dir()})
    return runs


def write_scale_page(runs: list[dict], page: Path, profiles=(), quality=(), peers=(), other_cpus=None) -> None:
    """docs/benchmarks/emde_scale.md and its log-log figure (time and memory against events), with
    the profile runs (`measure_profiles`) and the streaming-vs-memory runs (`stream_quality`)."""
    from sketchrec.eval.report import page_head, write_page
    figure = page.with_suffix(".png")
    figure.parent.mkdir(parents=True, exist_ok=True)
    _figure(runs, figure)
    head = ["events", "sessions", "items", "log MB", "generate s", "scan s", "codes s", "epoch s (CPU s)",
            "events / CPU s", "score 100k s (CPU s)", "profiles s", "peak RSS MiB"]
    rows = [[f"{r['events']:,}", f"{r['sessions']:,}", f"{r['n_items']:,}", f"{r['log_bytes'] / 1e6:,.0f}",
             "reused" if r.get("log_reused") else f"{r['generate_s']:.0f}", f"{r['scan_s']:.1f}", f"{r['codes_s']:.0f}",
             f"{r['epoch_s']:.0f} ({r['epoch_cpu_s']:.0f})", f"{r['events_per_cpu_s']:,.0f}",
             f"{r['score_s']:.1f} ({r['score_cpu_s']:.1f})", f"{r['profiles_s']:.0f}",
             f"{r['peak_rss_mib']:,.0f}"] for r in runs]
    cpus = sorted({c for r in runs for c in r.get("cpus", [])})
    ratio = "\nCPU" + ("s (the runs differ: compare only rows of one CPU): " if len(cpus) > 1 else ": ") + "; ".join(cpus) + "\n"
    steps = [f"{a['events']:,} -> {b['events']:,} events x{b['events_per_cpu_s'] / a['events_per_cpu_s']:.2f}"
             for a, b in zip(runs, runs[1:])]
    if steps:
        ratio += f"\nTraining events per CPU second, each size against the one before: {'; '.join(steps)} (the issue's bar: within 20%).\n"
    text = page_head("EMDE at scale: streaming training on synthetic logs",
                     "python -m benchmarks.emde_scale --sizes " + " ".join(str(r["events_asked"]) for r in runs))
    text += "\n".join([
        "", "One streaming epoch (`EMDE.fit(SessionStream(...))`, target next) of the `emde-session` preset "
        "with hidden 256, 1 thread, buffers of 2M events; scoring: top 20 of all items for the first "
        "100k sessions; profiles: every session's input sketch written to Parquet (`write_profiles`). "
        "Each size runs in its own process: peak RSS is that run's (ru_maxrss, the whole run, and of every "
        "run it resumed after a kill). Precision: the default (bf16 where the CPU computes it natively). Wall "
        "seconds depend on the other jobs sharing the 2 cores; CPU seconds (the process's) do much less. Logs: "
        "`sketchrec.data.synthetic` (Zipf 0.73 items, Diginetica-fitted lengths), items = events / 50.",
        "", *markdown_table(head, rows), ratio, f"![time and memory against events]({figure.name})", "",
        *_peer_section(peers, runs), *_profile_section(profiles), *_quality_section(quality),
        *_other_cpu_section(other_cpus or {})])
    write_page(page, text, data=runs)


def _other_cpu_section(other_cpus: dict) -> list[str]:
    """The same measurement kept from other machines (results/<machine>/events_*.json)."""
    lines = []
    for name, runs in other_cpus.items():
        if runs:
            cpus = "; ".join(sorted({c for r in runs for c in r.get("cpus", [])}))
            lines += [f"## Earlier runs on another machine ({name}): {cpus}", "",
                      f"The same command there (`results/emde_scale/{name}/`), "
                      f"{'bf16' if any(r.get('bf16') for r in runs) else 'float32'}.", "",
                      *markdown_table(["events", "epoch s (CPU s)", "events / CPU s", "codes s", "peak RSS MiB"],
                                      [[f"{r['events']:,}", f"{r['epoch_s']:.0f} ({r['epoch_cpu_s']:.0f})",
                                        f"{r['events_per_cpu_s']:,.0f}", f"{r['codes_s']:.0f}", f"{r['peak_rss_mib']:,.0f}"]
                                       for r in runs]), ""]
    return lines


def _peer_section(peers, runs) -> list[str]:
    if not peers:
        return []
    emde = {r["events_asked"]: r for r in runs}
    rows = []
    for p in peers:
        e = emde.get(p["events_asked"])
        if p["peer"] == "vsknn":
            work = f"load {p['load_s']:.0f} + fit {p['fit_s']:.0f}; score 100k {p['score_s']:.1f} (CPU {p['score_cpu_s']:.1f})"
        else:
            work = f"{p['steps']} iterations, {p['dim']} dims: {p['fit_s']:.0f}"
        ours = f"{e['epoch_s'] + e['codes_s']:.0f}; score {e['score_s']:.1f}" if e else "-"
        rows.append([{"vsknn": "V-SKNN (`vsknn-session`)", "cleora": "Cleora, streamed"}[p["peer"]], f"{p['events']:,}",
                     work, f"{p['peak_rss_mib']:,.0f}", ours])
    return ["## The other models on the same logs", "",
            "V-SKNN (`vsknn-session` preset) holds the whole log in memory: read into `Sessions`, fitted, then the top 20 "
            "for the same first 100k sessions; Cleora: the session-item graph's item vectors streamed over the log "
            "(what EMDE's codes are made of). Each in its own process, 1 thread; seconds are wall seconds. "
            "Command: as above (`--one N --peer vsknn|cleora` for one).", "",
            *markdown_table(["model", "events", "seconds", "peak RSS MiB", "EMDE: codes + epoch s; score 100k s"], rows), ""]


def _profile_section(profiles) -> list[str]:
    if not profiles:
        return []
    rows = [[f"{p['users']:,}", f"{p['events']:,}", f"{p['n_items']:,}", f"{p['codes_s']:.0f}",
             f"{p['profiles_s']:.0f}", f"{p['profile_bytes'] / 1e6:,.0f}", f"{p['peak_rss_mib']:,.0f}",
             p.get("cpu", "?").split(" (")[0]] for p in profiles]
    return ["## Profiles of every user", "",
            "EMDE's input sketches of every session of a synthetic log (`write_profiles`, a row group per "
            "2M-event buffer); codes: the scan and the Cleora passes (`fit` with epochs=0). "
            "Command: `python -m benchmarks.emde_scale --profiles N`.", "",
            *markdown_table(["users", "events", "items", "codes s", "profiles s", "Parquet MB", "peak RSS MiB", "CPU"], rows), ""]


def _quality_section(quality) -> list[str]:
    if not quality:
        return []
    quality = sorted(quality, key=lambda q: (len(q["history"]), q["params"]["seed"], q["mode"]))
    rows = [[_mode(q), str(q["params"]["seed"]), f"{100 * q['metrics']['HR@20']:.2f}", f"{100 * q['metrics']['MRR@20']:.2f}",
             f"{100 * q['metrics']['HR@10']:.2f}", f"{100 * q['metrics']['MRR@10']:.2f}", f"{q['fit_s']:.0f}",
             f"{q['peak_rss_mib']:,.0f}", str(len(q["history"])), _precision(q)] for q in quality]
    return ["## Streaming against in-memory training, Diginetica", "",
            "The `emde-session` preset, memory and stream at the same seed and epochs; \"stream\": the training sessions written "
            "as a Parquet log (row groups of 10,000 sessions) and read back by `SessionStream` "
            "(buffers of 200,000 events: block order and the pairs inside a buffer shuffled); test: every "
            "test prefix ranked against all items. Wall seconds under shared cores. Command: "
            "`python -m benchmarks.emde_scale --quality memory|stream --epochs 3 --seed S --float32` (seed 0 and the "
            "1-epoch runs: the Zen 3 machine, whose default was float32). With row groups of 10,000 sessions the buffer "
            "holds about 4 of the 19, so a batch mixes sessions of a quarter of the log; with row groups of 1,000 "
            "sessions (`--row-groups 1000`) it holds about 40 of 187, from all over the log.", "",
            *_quality_summary(quality), "",
            *markdown_table(["training", "seed", "HR@20", "MRR@20", "HR@10", "MRR@10", "fit s", "peak RSS MiB", "epochs",
                             "precision, CPU"], rows), ""]


def _quality_summary(quality) -> list[str]:
    """A line per epoch count with two or more seeds of both modes: mean ± std (over seeds) of
    HR@20 and MRR@20 of each, and whether the stream is within one std of the in-memory runs."""
    from sketchrec.eval.report import seeds_mean_std
    lines = []
    for epochs in sorted({len(q["history"]) for q in quality}):
        runs = {}
        for q in quality:
            if len(q["history"]) == epochs:
                runs.setdefault(_mode(q), []).append(q["metrics"])
        memory = runs.pop("memory", [])
        for stream_mode, stream in runs.items():
            if min(len(memory), len(stream)) < 2:
                continue
            stats = {"memory": seeds_mean_std(memory, ["HR@20", "MRR@20"]), "stream": seeds_mean_std(stream, ["HR@20", "MRR@20"])}
            parts = []
            for k in ("HR@20", "MRR@20"):
                (mm, ms), (sm, ss) = stats["memory"][k], stats["stream"][k]
                verdict = "within" if abs(sm - mm) <= ms else "beyond"
                parts.append(f"{k} memory {100 * mm:.2f} ± {100 * ms:.2f}, {stream_mode} {100 * sm:.2f} ± {100 * ss:.2f} "
                             f"(difference {100 * (sm - mm):+.2f}: {verdict} one std of the in-memory runs)")
            lines.append(f"- {epochs} epoch(s), seeds {len(memory)} / {len(stream)}: " + "; ".join(parts) + ".")
    return lines


def _mode(run: dict) -> str:
    """"memory", "stream", or "stream, row groups of 1,000 sessions" (other than the 10,000 of the first runs)."""
    groups = run.get("sessions_per_group")
    return run["mode"] + (f", row groups of {groups:,} sessions" if groups and groups != 10_000 else "")


def _precision(run: dict) -> str:
    """"float32, Xeon ..." of a stored run (runs before the CPU was recorded: the Zen 3, float32)."""
    if "cpu" not in run:
        return "float32, AMD EPYC Zen 3"
    return ("bf16" if run["bf16"] else "float32") + ", " + run["cpu"].split(" (")[0]


def _figure(runs: list[dict], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    events = [r["events"] for r in runs]
    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.6))
    for key, label in (("epoch_s", "training epoch (wall)"), ("epoch_cpu_s", "training epoch (CPU)"),
                       ("codes_s", "scan + Cleora codes"), ("profiles_s", "profiles")):
        a.loglog(events, [r[key] for r in runs], "o-", label=label)
    a.set(xlabel="events", ylabel="seconds", title="time")
    a.legend(fontsize=8)
    b.loglog(events, [r["peak_rss_mib"] for r in runs], "o-", label="peak RSS")
    b.loglog(events, [r["log_bytes"] / 2**20 for r in runs], "s--", label="log on disk")
    b.set(xlabel="events", ylabel="MiB", title="memory and disk")
    b.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def stream_quality(make_model, bench, mode: str, log_dir: Path, buffer_events: int = 200_000,
                   progress: bool = False, checkpoint: Path | None = None, sessions_per_group: int = 10_000) -> dict:
    """Fit `make_model()` on a session benchmark's training rows, in memory (mode "memory") or
    from those rows written as a Parquet log and read back as a `SessionStream` (mode "stream",
    buffers of `buffer_events` events: the row-group order and the pairs inside a buffer are
    shuffled), and evaluate on its test pairs. Returns metrics, fit seconds, peak RSS.
    checkpoint : optional path the fit checkpoints to (and resumes from after a kill); fit_s
        is then this process's part.
    sessions_per_group : the log's row groups (the blocks whose order is shuffled): smaller
        ones mix more sessions of the log into a buffer."""
    from sketchrec.eval.protocols import evaluate_session_benchmark
    if mode not in ("memory", "stream"):
        raise ValueError(f"mode must be 'memory' or 'stream', got {mode!r}")
    model = make_model()
    t0 = time.perf_counter()
    if mode == "stream":
        if not log_dir.exists():                 # written once (its files' identity is a checkpoint's data id)
            tmp = log_dir.with_name(log_dir.name + ".tmp")
            shutil.rmtree(tmp, ignore_errors=True)
            write_session_log(bench.train, tmp, sessions_per_group=sessions_per_group)
            tmp.rename(log_dir)
        model.fit(SessionStream(log_dir, buffer_events=buffer_events, n_items=bench.train.n_items), checkpoint=checkpoint)
    else:
        model.fit(bench.train, checkpoint=checkpoint)
    fit_s = time.perf_counter() - t0
    result = evaluate_session_benchmark(model, bench, fit=False, progress=progress)
    return {"mode": mode, "sessions_per_group": sessions_per_group if mode == "stream" else None,
            "metrics": result.metrics, "fit_s": fit_s, "score_s": result.score_seconds,
            "history": model.history_, "peak_rss_mib": peak_rss_mib(), "params": model.get_params(),
            "bf16": model.bf16_, "cpu": cpu_summary()}


def save(path: Path, data: dict, quiet: bool = False) -> None:
    """Write one result as JSON (its folder made; atomically: a kill leaves the previous file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1, default=float))
    tmp.replace(path)
    if not quiet:
        print(f"written {path}")
