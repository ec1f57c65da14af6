"""A load-test harness for `sketchrec serve`: the server in its own process (optionally pinned to
cores with `taskset`), request bodies written to files, headless locust runs against it (a
locustfile such as benchmarks/peers/locustfile_serve.py), their stats summarised, and the
server's memory per worker process; plus where one request's time goes in-process and the int8
network's quality. benchmarks/serve_load.py drives it and writes docs/benchmarks/serve_load.md.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from sketchrec.bundle import load_bundle
from sketchrec.data import registry
from sketchrec.eval.report import best_seconds, host_line, markdown_table
from sketchrec.precision import cpu_summary
from sketchrec.serve.limits import LIMITS, scored_rows


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_payloads(folder: Path, prefixes, n_items: int, k: int, batches) -> dict[int, tuple[str, int]]:
    """Request bodies for the locustfile in `folder`: single.jsonl and batchB.jsonl (one JSON body per
    line), and one hostile_NAME file per hostile request; {batch size: (file name, sessions per request)}."""
    rng = np.random.default_rng(0)
    order = rng.permutation(len(prefixes))
    lines = lambda bodies: b"\n".join(json.dumps(b).encode() for b in bodies)  # noqa: E731
    rows = {}
    single = [{"items": prefixes[i], "k": k} for i in order[:5000]]
    (folder / "single.jsonl").write_bytes(lines(single))
    for b in batches:
        batched = [{"sessions": [prefixes[i] for i in order[s:s + b]], "k": k}
                   for s in range(0, min(len(order), 50 * b), b)]
        (folder / f"batch{b}.jsonl").write_bytes(lines(batched))
        rows[b] = (f"batch{b}.jsonl", b)
    session = prefixes[order[0]]
    many, size = [], 0                          # the most sessions that fit the server's body limit
    for i in np.resize(order, 10_000):
        size += len(json.dumps(prefixes[i])) + 2
        if size > 0.95 * LIMITS["max_body_bytes"]:
            break
        many.append(prefixes[i])
    hostile = {
        "oversized": {"items": ["x" * 1000] * 2100, "k": 20},                      # ~2.1 MB
        "single": {"items": session, "k": k},
        "huge_k": {"items": session, "k": 10 ** 6},
        "work": {"sessions": many[:1000], "k": 1000},
        "largest": {"sessions": many[:scored_rows(LIMITS, n_items)], "k": k},
        "unknown": {"sessions": [[f"{'u' * 250}{i}-{j}" for j in range(10)] for i in range(100)], "k": k},
        "profile": {"sessions": many},
    }
    for name, body in hostile.items():
        (folder / f"hostile_{name}").write_bytes(json.dumps(body).encode())
    (folder / "hostile_nan").write_bytes(b'{"items": ["1"], "k": NaN}')
    return rows


def rss_mb(pid: int) -> float:
    import psutil
    return psutil.Process(pid).memory_info().rss / 2 ** 20


def run_locust(locustfile: Path, folder: Path, url: str, users: list[str], n_users: int, seconds: float,
               pin: list[str], env: dict) -> list[dict]:
    """A headless locust run; its per-request-name stats (locust's JSON)."""
    out = folder / "stats.json"
    out.unlink(missing_ok=True)
    cmd = [*pin, str(Path(sys.executable).parent / "locust"), "-f", str(locustfile), "--headless",
           "-u", str(n_users), "-r", str(n_users), "-t", f"{seconds:g}s", "--host", url, "--only-summary",
           "--stop-timeout", "30", "--loglevel", "ERROR", "--json-file", str(out.with_suffix("")), *users]
    done = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                          timeout=seconds + 120)
    if not out.exists():
        raise RuntimeError(f"locust wrote no stats (exit {done.returncode}):\n{done.stderr[-2000:]}")
    return json.loads(out.read_text())


def summarize(entry: dict, per_request: int = 1) -> dict:
    """Counts, rates and percentiles of one locust stats entry (its response-time histogram, ms)."""
    times = sorted((float(ms), n) for ms, n in entry["response_times"].items())
    values, counts = np.array([t for t, _ in times]), np.cumsum([n for _, n in times])
    pct = lambda q: float(values[np.searchsorted(counts, q * counts[-1])]) if len(values) else np.nan  # noqa: E731
    span = max(entry["last_request_timestamp"] - entry["start_time"], 1e-9)
    n, failed = entry["num_requests"], entry["num_failures"]
    return {"requests": n, "errors": failed, "p50_ms": pct(0.5), "p99_ms": pct(0.99), "requests_per_s": n / span,
            "users_per_s": (n - failed) * per_request / span}


def wait_for(url: str, server: subprocess.Popen, seconds: float = 600) -> None:
    import httpx
    stop = time.perf_counter() + seconds
    while time.perf_counter() < stop:
        if server.poll() is not None:
            raise RuntimeError(f"the server exited: {server.stderr.read()[-2000:]}")
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"the server did not come up in {seconds:g} s")


def start_server(bundle: Path, port: int, env: dict, pin: list[str], *extra: str) -> subprocess.Popen:
    return subprocess.Popen([*pin, sys.executable, "-m", "sketchrec.cli", "serve", str(bundle), "--port", str(port),
                             *extra], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def worker_processes(server: subprocess.Popen) -> list:
    """The server's worker processes: its children that map the weights, by pid."""
    import psutil
    return sorted((p for p in psutil.Process(server.pid).children(recursive=True)
                   if any(m.path.endswith("weights.safetensors") for m in p.memory_maps())), key=lambda p: p.pid)


def worker_memory(server: subprocess.Popen) -> list[dict]:
    """Per worker process: RSS, USS (pages only it holds) and the weights file's mapped pages,
    resident and proportional (PSS: shared pages split among sharers), MB."""
    out = []
    for p in worker_processes(server):
        maps = [m for m in p.memory_maps(grouped=False) if m.path.endswith("weights.safetensors")]
        if maps:
            full = p.memory_full_info()
            out.append({"rss": full.rss / 2 ** 20, "uss": full.uss / 2 ** 20,
                        "weights_rss": sum(m.rss for m in maps) / 2 ** 20,
                        "weights_pss": sum(m.pss for m in maps) / 2 ** 20})
    return out


def time_breakdown(bundle: Path, prefixes: list[list[str]], k: int, n: int = 1000, repeats: int = 5) -> dict:
    """ms per `n` sessions on one core (this process pinned to its first allowed core meanwhile)."""
    import asyncio

    import httpx
    import numba
    import torch

    from sketchrec.data.sessions import Sessions
    from sketchrec.serve import create_app
    cores = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(cores)})
    torch.set_num_threads(1)
    numba.set_num_threads(1)
    try:
        loaded = load_bundle(bundle)
        model, ids = loaded.model, loaded.items
        internal = ids.lookup([x for p in prefixes[:n] for x in p]).internal.astype(np.int32)
        indptr = np.concatenate([[0], np.cumsum([len(p) for p in prefixes[:n]])])
        hist = Sessions(indptr, internal, model.n_items_)

        def best(fn):
            return 1000 * best_seconds(fn, repeats)
        x = model._encode(hist)
        out = {"input sketches": best(lambda: model._encode(hist))}
        with torch.inference_mode():
            out["network, float32"] = best(lambda: model.net_(*x))
        log_p, kw = model._readout_inputs(hist)
        readout = model._readout
        out["readout + top-k, batch-first"] = best(lambda: readout.topk(log_p, k, **kw))
        rows = readout.batch_rows
        readout.batch_rows = 10 ** 9
        out["readout + top-k, row kernel (before)"] = best(lambda: readout.topk(log_p, k, **kw))
        readout.batch_rows = rows
        out["model.recommend, float32"] = best(lambda: model.recommend(hist, k))
        body = json.dumps({"sessions": prefixes[:n], "k": k}).encode()
        app = create_app(loaded, threads=1)

        async def request():
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
                reply = await client.post("/recommend", content=body, headers={"content-type": "application/json"})
                reply.raise_for_status()
        out["whole request in-process, float32"] = best(lambda: asyncio.run(request()))
        model.to_int8()
        x = model._encode(hist)
        with torch.inference_mode():
            out["network, int8"] = best(lambda: model.net_(*x))
        out["model.recommend, int8"] = best(lambda: model.recommend(hist, k))
    finally:
        os.sched_setaffinity(0, cores)
    return out


def int8_quality(bundle: Path, k: int) -> dict:
    """HR@k / MRR@k (%) of the bundle's float32 and int8 networks on every Diginetica test prefix."""
    from sketchrec.eval.protocols import evaluate_next_item
    bench = registry.load("diginetica")
    model = load_bundle(bundle).model
    out = {}
    for name in ("float32", "int8"):
        if name == "int8":
            model.to_int8()
        metrics, _ = evaluate_next_item(model, bench.test_prefixes, bench.test_targets, ks=(k,), progress=False)
        out[name] = (100 * metrics[f"HR@{k}"], 100 * metrics[f"MRR@{k}"])
    return out


def run_workers(locustfile: Path, folder: Path, bundle: Path, batch_files: dict, env: dict, *, workers: int,
                users: int, seconds: float) -> list[tuple]:
    """Batches of the largest size in `batch_files` against `--workers N` servers (float32, then int8),
    nothing pinned: [(row name, summary, per-worker memory)]."""
    import httpx
    b = max(batch_files)
    out = []
    for extra, label in (((), "float32"), (("--int8",), "int8")):
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        server = start_server(bundle, port, env, [], "--workers", str(workers), *extra)
        try:
            wait_for(url, server)
            time.sleep(2)                                  # every worker up, not just the first
            keyed = {"X-API-Key": env["SKETCHREC_API_KEY"]}
            body = json.loads((folder / batch_files[b][0]).read_bytes().split(b"\n")[0])
            for _ in range(4 * workers):
                httpx.post(f"{url}/recommend", json=body, headers=keyed, timeout=60).raise_for_status()
            procs = worker_processes(server)
            cpu0, t0 = [sum(p.cpu_times()[:2]) for p in procs], time.perf_counter()
            stats = run_locust(locustfile, folder, url, ["Scoring"], users, seconds, [],
                               {**env, "SERVE_LOAD_BODIES": batch_files[b][0]})
            wall = time.perf_counter() - t0                   # locust's start and stop included
            busy = [(sum(p.cpu_times()[:2]) - c) / wall for p, c in zip(procs, cpu0)]
            entry = next(e for e in stats if e["name"] == "/recommend")
            memory = worker_memory(server)
            for m, share in zip(memory, busy):
                m["cpu"] = share
            out.append((f"batches of {b:,}, {users} users, {workers} workers, {label}",
                        summarize(entry, b), memory))
        finally:
            server.terminate()
            server.wait(timeout=30)
    return out


def load_report(args, rows, rss, hostile, by_kind, probe, metrics_size, status_after, fit_s, model_name, n_prefixes,
                pinned, total_s, workers, breakdown, quality) -> str:
    """The page docs/benchmarks/serve_load.md (no final newline) from a load test's measurements; `args`
    is benchmarks/serve_load.py's namespace (seconds, hostile_seconds, hostile_users, k, bundle, workers)."""
    command = "python benchmarks/serve_load.py" + (f" --seconds {args.seconds:g}" if args.seconds != 20 else "") + \
        (f" --hostile-seconds {args.hostile_seconds:g}" if args.hostile_seconds != 60 else "")
    built = f"fitted on Diginetica's training sessions in {fit_s:.0f} s" if fit_s else f"reused from {args.bundle}"
    lines = ["# Serving under load: legitimate and hostile traffic", "",
             f"{host_line()}; CPU {cpu_summary()}; {pinned}. Command: `{command}` ({total_s / 60:.1f} min in all).", "",
             f"Bundle: {model_name} {built}; requests are real Diginetica test prefixes ({n_prefixes:,}), "
             f"top-{args.k} over all items, with the API key from $SKETCHREC_API_KEY; `sketchrec serve` (uvicorn, "
             f"1 worker, 1 model thread on its core). Load: locust, headless, closed loop, {args.seconds:g} s per row. "
             "Latencies are locust's (rounded to 10 ms above 100 ms, to 100 ms above 1 s).", "",
             *markdown_table(["load", "requests", "errors", "p50 ms", "p99 ms", "requests / s", "users / s",
                              "server RSS before -> after MB"],
                             [[name, f"{r['requests']:,}", r["errors"], f"{r['p50_ms']:.0f}", f"{r['p99_ms']:.0f}",
                               f"{r['requests_per_s']:,.0f}", f"{r['users_per_s']:,.0f}",
                               f"{before:,.0f} -> {after:,.0f}"] for name, r, before, after in rows]),
             "", f"## Hostile traffic: {args.hostile_users} users for {args.hostile_seconds:g} s, and a /health probe", "",
             *markdown_table(["request", "sent", "answers by status", "errors (5xx but 503)", "p50 ms", "p99 ms"],
                             [[kind, f"{r['requests']:,}",
                               ", ".join(f"{s}: {n:,}" for s, n in sorted(by_kind.get(kind, {}).items())),
                               r["errors"], f"{r['p50_ms']:.0f}", f"{r['p99_ms']:.0f}"]
                              for kind, r in sorted(hostile.items())])]
    lines += ["", f"/health during the phase: {probe['requests']:,} probes, {probe['errors']} errors, p50 "
              f"{probe['p50_ms']:.0f} ms, p99 {probe['p99_ms']:.0f} ms. /metrics: {metrics_size[0]:,} bytes before, "
              f"{metrics_size[1]:,} after. A legitimate request after the phase: {status_after}.", "",
              "Server RSS (MB): " + "; ".join(f"{k} {v:,.0f}" for k, v in rss.items()) + ". After the hostile "
              f"phase it is {rss['after hostile + 5 s idle'] - rss['warm']:+,.0f} MB against after the warm-up.", "",
              "Targets (issue 9): p99 under 20 ms for a single request; at least 10,000 users / s with batching. "
              "Issue 28: no 5xx but 503 under hostile traffic, /health answered throughout, /metrics and RSS "
              "bounded."]
    lines += ["", f"## Several workers: `sketchrec serve --workers {args.workers}`, both cores", "",
              f"{args.workers} uvicorn workers ({max(1, (os.cpu_count() or 1) // args.workers)} compute thread each) "
              "share the port and one memory-mapped copy of the weights; locust runs on the same cores (not "
              "pinned), so its own CPU is taken from the server's. Memory per worker: RSS, USS (pages no other "
              "process holds), and weights.safetensors' mapped pages: resident in the worker vs its proportional "
              "share (PSS = resident / processes sharing them). The kernel hands each new connection to one "
              "worker and a client keeps its connection, so a worker's share of the load is its share of the "
              "connections: with few clients one worker can idle (its CPU busy column shows it); put several "
              "workers behind many client connections or a load balancer.", "",
              *markdown_table(["load", "requests", "errors", "p50 ms", "p99 ms", "requests / s", "users / s",
                               "per worker: CPU busy, RSS / USS MB, weights resident / PSS MB"],
                              [[name, f"{r['requests']:,}", r["errors"], f"{r['p50_ms']:.0f}", f"{r['p99_ms']:.0f}",
                                f"{r['requests_per_s']:,.1f}", f"{r['users_per_s']:,.0f}",
                                "; ".join(f"{m['cpu']:.0%}, {m['rss']:,.0f} / {m['uss']:,.0f}, {m['weights_rss']:.1f} / "
                                          f"{m['weights_pss']:.1f}" for m in memory)] for name, r, memory in workers])]
    best = max(r["users_per_s"] for _, r, _ in workers)
    lines += ["", f"Best: {best:,.0f} users / s; the 10,000 users / s target is "
              + ("met." if best >= 10_000 else f"**not met** ({best / 10_000:.0%} of it)."), "",
              "## Where the time goes: 1,000 sessions on one core", "",
              "Measured in this process on one core (torch and numba at 1 thread), best of 5; Diginetica test "
              "prefixes, top-20.", "",
              *markdown_table(["step", "ms per 1,000 sessions"], [[n, f"{ms:.1f}"] for n, ms in breakdown.items()])]
    f32, i8 = quality["float32"], quality["int8"]
    lines += ["", f"One core's ceiling is 1,000 / (whole request) sessions per second: "
              f"{1e6 / breakdown['whole request in-process, float32']:,.0f} users / s per core in float32. "
              f"Quality of the int8 network on all {n_prefixes:,} test prefixes: HR@{args.k} / MRR@{args.k} "
              f"{i8[0]:.2f} / {i8[1]:.2f} against float32 {f32[0]:.2f} / {f32[1]:.2f}."]
    return "\n".join(lines)
