"""Latency and throughput of `sketchrec serve` on loopback (issue 9).

A bundle is built from a model fitted on Diginetica's training sessions (--model: emde,
iknn, vsknn, pop, sr), the server runs in its own process (uvicorn, 1 worker), and a load
generator (httpx, asyncio) sends real test prefixes of Diginetica:

- single requests one at a time: p50 / p99 latency;
- single requests from --concurrency clients at once: throughput and latency;
- batched requests (--batch sessions per request): users scored per second.

Every run counts errors (any non-200 answer or transport failure). Same machine for server
and client: the client's own CPU use is part of the picture.

    python benchmarks/serve_load.py --model emde --seconds 20
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sketchrec.bundle import save_bundle  # noqa: E402
from sketchrec.data import registry  # noqa: E402

OUT = ROOT / "docs" / "benchmarks"


def build_bundle(model_name: str, path: Path, threads: int):
    bench = registry.load("diginetica")
    from sketchrec.models import MODELS
    model = MODELS[model_name](epochs=1, threads=threads, progress=False) if model_name == "emde" else \
        MODELS[model_name]()
    t0 = time.perf_counter()
    model.fit(bench.train)
    fit_s = time.perf_counter() - t0
    from sketchrec.pipeline import item_id_map
    ids = item_id_map(bench)
    save_bundle(path, model, ids, config={"dataset": "diginetica"})
    prefixes = [[str(ids.keys[int(i)]) for i in bench.test_prefixes.row(r)] for r in range(len(bench.test_targets))]
    return prefixes, fit_s, type(model).__name__


def model_cost(bundle: Path, args) -> list[tuple]:
    """(batch, network ms, readout + top-k ms, recommend ms) for EMDE, in-process."""
    import torch

    from sketchrec.bundle import load_bundle
    from sketchrec.eval.report import median_seconds
    torch.set_num_threads(args.threads)
    model = load_bundle(bundle).model
    bench = registry.load("diginetica")
    out = []
    for b in args.batches:
        h = bench.test_prefixes.take(np.arange(b))

        def median_ms(fn):
            return 1000 * median_seconds(fn)
        net = median_ms(lambda: model._readout_inputs(h))
        log_p, kw = model._readout_inputs(h)
        sel = median_ms(lambda: model._readout.topk(log_p, args.k, **kw))
        total = median_ms(lambda: model.recommend(h, k=args.k))
        out.append((b, net, sel, total))
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def run_load(url: str, payloads, concurrency: int, seconds: float) -> dict:
    import httpx
    latencies, errors, users = [], 0, 0
    stop = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as client:
        async def worker(w: int):
            nonlocal errors, users
            i = w
            while time.perf_counter() < stop:
                body, n_users = payloads[i % len(payloads)]
                t0 = time.perf_counter()
                try:
                    r = await client.post("/recommend", json=body)
                    ok = r.status_code == 200
                except httpx.HTTPError:
                    ok = False
                latencies.append(time.perf_counter() - t0)
                if ok:
                    users += n_users
                else:
                    errors += 1
                i += concurrency
        t0 = time.perf_counter()
        await asyncio.gather(*(worker(w) for w in range(concurrency)))
        elapsed = time.perf_counter() - t0
    lat = np.array(latencies) * 1000
    return {"requests": len(lat), "errors": errors, "p50_ms": float(np.percentile(lat, 50)),
            "p99_ms": float(np.percentile(lat, 99)), "requests_per_s": len(lat) / elapsed, "users_per_s": users / elapsed}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="emde", choices=["emde", "iknn", "vsknn", "pop", "sr"])
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--batches", nargs="+", type=int, default=[100, 1000])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--k", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        bundle = Path(tmp) / "bundle"
        prefixes, fit_s, model_name = build_bundle(args.model, bundle, args.threads)
        port = free_port()
        env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
        server = subprocess.Popen([sys.executable, "-m", "sketchrec.cli", "serve", str(bundle), "--port", str(port)],
                                  env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        url = f"http://127.0.0.1:{port}"
        try:
            import httpx
            for _ in range(600):
                try:
                    if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.1)
            rng = np.random.default_rng(0)
            order = rng.permutation(len(prefixes))
            single = [({"items": prefixes[i], "k": args.k}, 1) for i in order[:5000]]
            rows = []
            rows.append(("single, 1 client", asyncio.run(run_load(url, single, 1, args.seconds))))
            rows.append((f"single, {args.concurrency} clients",
                         asyncio.run(run_load(url, single, args.concurrency, args.seconds))))
            for b in args.batches:
                batched = [({"sessions": [prefixes[i] for i in order[s:s + b]], "k": args.k}, b)
                           for s in range(0, min(len(order), 50 * b), b)]
                rows.append((f"batches of {b}, 2 clients", asyncio.run(run_load(url, batched, 2, args.seconds))))
        finally:
            server.terminate()
            server.wait(timeout=30)
        in_process = model_cost(bundle, args) if args.model == "emde" else []
    lines = ["# Serving: latency and throughput on loopback", "",
             f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {platform.machine()}, {os.cpu_count()} cores "
             "(server and load generator share them). Command: `python benchmarks/serve_load.py --model "
             f"{args.model} --seconds {args.seconds:g}`.", "",
             f"Bundle: {model_name} fitted on Diginetica's training sessions ({fit_s:.0f} s); 43,097 items; requests "
             f"are real Diginetica test prefixes, top-{args.k} over all items; uvicorn, 1 worker, "
             f"{args.threads} threads. {args.seconds:g} s per row.", "",
             "| load | requests | errors | p50 ms | p99 ms | requests / s | users / s |", "|---|---|---|---|---|---|---|"]
    for name, r in rows:
        lines.append(f"| {name} | {r['requests']:,} | {r['errors']} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | "
                     f"{r['requests_per_s']:,.0f} | {r['users_per_s']:,.0f} |")
    if in_process:
        lines += ["", "The model alone, in this process with no HTTP (median of 5; the server was stopped): where a "
                  "batch's time goes.", "",
                  "| sessions per call | network (sketches -> predicted log-sketches) ms | readout + top-k ms | "
                  "recommend ms | users / s |", "|---|---|---|---|---|"]
        lines += [f"| {b:,} | {net:.0f} | {sel:.0f} | {total:.0f} | {b / total * 1000:,.0f} |"
                  for b, net, sel, total in in_process]
    lines += ["", "Targets (issue 9): p99 under 20 ms for a single request; at least 10,000 users / s with batching."]
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "serve_load.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
