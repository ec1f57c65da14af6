"""Throughput, latency and memory of `sketchrec serve` under load, legitimate and hostile (issues 9, 28).

A bundle is built from EMDE fitted on Diginetica's training sessions (or reused: --bundle), the
server runs as `sketchrec serve` in its own process with an API key from $SKETCHREC_API_KEY, and
the load comes from locust (headless, FastHttpUser, closed loop: each user sends its next request
as soon as the last one is answered), in another process. With two or more cores the server is
pinned to core 0 and locust to core 1 (`taskset`), so the load generator's own CPU does not slow
the server down; the report says when they had to share.

- Legitimate rows: real Diginetica test prefixes, one session per request (1 and 8 users) and
  batches of 100 and 1,000 sessions (2 users): requests / s, users (sessions) / s, p50 / p99
  latency, errors (any answer but 200), and the server's RSS before and after each row.
- Hostile phase: users that send what a careless or hostile client does (bodies over the size
  limit, with and without the key; random paths; wrong and non-ASCII keys; k far over the limit;
  results over the work limit; NaN; the largest batch the limits allow; thousands of long unknown
  ids; the largest profile batch) while a probe polls /health every 100 ms. Reported: answers by
  kind and status (anything 5xx but 503 is an error), /health latency during the phase, the
  server's RSS after it against after the warm-up, and the size of /metrics before and after.

The clients are benchmarks/peers/locustfile_serve.py.

    python -m benchmarks.serve_load       # the full run: ~4 min plus fitting EMDE; writes docs/benchmarks
    python -m benchmarks.serve_load --bundle /tmp/dg-emde  # keep the fitted bundle for the next run
    python -m benchmarks.serve_load --seconds 5 --hostile-seconds 10 --output /tmp/serve_load.md
"""

from __future__ import annotations

import json
import os
import secrets
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from sketchrec.bundle import load_bundle, save_bundle
from sketchrec.data import registry
from sketchrec.eval.report import benchmark_parser, core_pins, timed, write_page
from sketchrec.serve.loadtest import (free_port, int8_quality, load_report, rss_mb, run_locust, run_workers, start_server,
                                      summarize, time_breakdown, wait_for, write_payloads)

ROOT = Path(__file__).resolve().parents[1]
LOCUSTFILE = ROOT / "benchmarks" / "peers" / "locustfile_serve.py"


def bundle_and_prefixes(path: Path, threads: int) -> tuple[list[list[str]], int, float | None, str]:
    """Diginetica's test prefixes as external ids, and an EMDE bundle at `path` (fitted unless
    one is there already): (prefixes, items, fit seconds or None, model class)."""
    from sketchrec.pipeline import item_id_map
    bench = registry.load("diginetica")
    ids = item_id_map(bench)
    fit_s = None
    if not (path / "CURRENT").exists():
        from sketchrec.models.emde import EMDE
        model, fit_s = timed(EMDE(epochs=1, threads=threads, progress=False).fit, bench.train)
        save_bundle(path, model, ids, config={"dataset": "diginetica"})
    name = load_bundle(path).manifest["model_class"]
    keys = ids.keys.to_pylist()
    prefixes = [[keys[int(i)] for i in bench.test_prefixes.row(r)] for r in range(len(bench.test_targets))]
    return prefixes, len(keys), fit_s, name


def main() -> None:
    parser = benchmark_parser(__doc__, threads=2, output=ROOT / "docs" / "benchmarks" / "serve_load.md")
    parser.add_argument("--seconds", type=float, default=20, help="per legitimate row")
    parser.add_argument("--hostile-seconds", type=float, default=60)
    parser.add_argument("--hostile-users", type=int, default=8)
    parser.add_argument("--batches", nargs="+", type=int, default=[100, 1000])
    parser.add_argument("--k", type=int, default=20)
    parser.add_argument("--bundle", type=Path, help="reuse (or build and keep) the bundle here")
    parser.add_argument("--workers", type=int, default=2, help="for the several-workers rows")
    parser.add_argument("--worker-users", type=int, default=8, help="locust users for the several-workers rows")
    args = parser.parse_args()
    pin_server, pin_load, pinned = core_pins()
    t_start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        bundle = args.bundle or folder / "bundle"
        prefixes, n_items, fit_s, model_name = bundle_and_prefixes(bundle, args.threads)
        batch_files = write_payloads(folder, prefixes, n_items, args.k, args.batches)
        port, key = free_port(), secrets.token_urlsafe(24)
        url = f"http://127.0.0.1:{port}"
        env = {**os.environ, "SKETCHREC_API_KEY": key, "SERVE_LOAD_DIR": str(folder), "OMP_NUM_THREADS": "1",
               "NUMBA_NUM_THREADS": "1"}
        server = start_server(bundle, port, env, pin_server)
        rows, rss = [], {}
        try:
            import httpx
            wait_for(url, server)
            rss["started"] = rss_mb(server.pid)
            keyed = {"X-API-Key": key}
            for body in [{"items": p, "k": args.k} for p in prefixes[:50]] + \
                        [{"sessions": prefixes[:b], "k": args.k} for b in args.batches]:
                httpx.post(f"{url}/recommend", json=body, headers=keyed, timeout=60).raise_for_status()
            rss["warm"] = rss_mb(server.pid)
            loads = [(f"single session, {n} user{'s' * (n > 1)}", "single.jsonl", n, 1) for n in (1, 8)]
            loads += [(f"batches of {b:,}, 2 users", batch_files[b][0], 2, b) for b in args.batches]
            for name, bodies, n_users, per_request in loads:
                before = rss_mb(server.pid)
                stats = run_locust(LOCUSTFILE, folder, url, ["Scoring"], n_users, args.seconds, pin_load,
                                   {**env, "SERVE_LOAD_BODIES": bodies})
                entry = next(e for e in stats if e["name"] == "/recommend")
                rows.append((name, summarize(entry, per_request), before, rss_mb(server.pid)))
            rss["after legitimate load"] = rss_mb(server.pid)
            metrics_before = len(httpx.get(f"{url}/metrics", headers=keyed).content)
            stats = run_locust(LOCUSTFILE, folder, url, ["Hostile", "Probe"], args.hostile_users + 1, args.hostile_seconds,
                               pin_load, env)
            rss["after hostile"] = rss_mb(server.pid)
            time.sleep(5)
            rss["after hostile + 5 s idle"] = rss_mb(server.pid)
            metrics_after = len(httpx.get(f"{url}/metrics", headers=keyed).content)
            after = httpx.post(f"{url}/recommend", json={"items": prefixes[0], "k": args.k}, headers=keyed)
            statuses = json.loads((folder / "status.json").read_text())
        finally:
            server.terminate()
            server.wait(timeout=30)
        workers = run_workers(LOCUSTFILE, folder, bundle, batch_files, env, workers=args.workers,
                              users=args.worker_users, seconds=args.seconds)
        breakdown = time_breakdown(bundle, prefixes, args.k)
        quality = int8_quality(bundle, args.k)
    hostile = {e["name"]: summarize(e) for e in stats}
    probe = hostile.pop("/health (probe)")
    by_kind = defaultdict(dict)
    for kind_status, n in statuses.items():
        kind, status = kind_status.rsplit("|", 1)
        by_kind[kind][status] = n
    total_s = time.perf_counter() - t_start
    text = load_report(args, rows, rss, hostile, by_kind, probe, (metrics_before, metrics_after), after.status_code,
                       fit_s, model_name, len(prefixes), pinned, total_s, workers, breakdown, quality)
    write_page(args.output, text + "\n", echo=True)

if __name__ == "__main__":
    main()
