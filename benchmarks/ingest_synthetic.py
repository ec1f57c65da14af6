"""Ingestion speed and memory: N synthetic click rows (CSV) -> Interactions with internal ids.

Synthetic data is for scale only. Rows: session id, item id (Zipf-distributed
popularity), Unix-second timestamp, event type. Each measurement runs in a
fresh subprocess so its peak RSS (ru_maxrss) is the reader's alone.

    python -m benchmarks.ingest_synthetic --rows 10000000
writes docs/benchmarks/ingest.md.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from sketchrec.eval.report import benchmark_parser, command, page_head, run_python, write_page

ROOT = Path(__file__).resolve().parents[1]


def make_csv(path: Path, rows: int, seed: int = 0) -> None:
    """Write the synthetic file in chunks (numpy formatting, no per-row Python)."""
    rng = np.random.default_rng(seed)
    chunk = 2_000_000
    with open(path, "w") as fh:
        fh.write("session_id,item_id,timestamp,event\n")
        written = 0
        while written < rows:
            n = min(chunk, rows - written)
            session = np.sort(rng.integers(0, rows // 5, n)) + 10_000_000
            item = np.minimum(rng.zipf(1.3, n), 2_000_000) + 100_000
            ts = 1_600_000_000 + rng.integers(0, 30 * 86400, n)
            event = rng.choice(np.array(["view", "cart", "buy"]), n, p=[0.9, 0.08, 0.02])
            block = np.char.add(np.char.add(np.char.add(np.char.add(
                session.astype(str), ","), np.char.add(item.astype(str), ",")),
                np.char.add(ts.astype(str), ",")), event)
            fh.write("\n".join(block.tolist()))
            fh.write("\n")
            written += n


def measure(path: Path, threads: int) -> dict:
    """Run the reader in a child process; return seconds, peak RSS and counts."""
    code = f"""
import json, time, resource
from sketchrec.data import read_interactions
t0 = time.perf_counter()
inter = read_interactions({str(path)!r}, user="session_id", item="item_id", timestamp="timestamp",
                          event="event", threads={threads})
seconds = time.perf_counter() - t0
print(json.dumps({{"seconds": seconds, "rows": len(inter), "users": inter.n_users,
                  "items": inter.n_items,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))
"""
    return run_python(sys.executable, ["-c", code])


def main() -> None:
    parser = benchmark_parser(__doc__, threads=os.cpu_count(), output=ROOT / "docs/benchmarks/ingest.md")
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/sketchrec-bench"))
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    path = args.workdir / f"clicks_{args.rows}.csv"
    if not path.exists():
        t0 = time.perf_counter()
        make_csv(path, args.rows)
        print(f"wrote {path} ({path.stat().st_size / 2**20:.0f} MiB) in {time.perf_counter() - t0:.0f} s")
    result = measure(path, args.threads)
    print(json.dumps(result))
    write_page(args.output,
        page_head("Ingestion: CSV click rows -> internal ids", command("ingest_synthetic", rows=args.rows)) +
        "| rows | file MiB | threads | seconds | rows/s | peak RSS MiB | users | items |\n"
        "|---|---|---|---|---|---|---|---|\n"
        f"| {result['rows']:,} | {path.stat().st_size / 2**20:,.0f} | {args.threads} | "
        f"{result['seconds']:.1f} | {result['rows'] / result['seconds']:,.0f} | "
        f"{result['peak_rss_mb']:,.0f} | {result['users']:,} | {result['items']:,} |\n\n"
        "Reading = DuckDB CSV scan (all columns as text) + one validation pass (typed casts, "
        "bad-row bitmask) + arrow dictionary encoding of user, item and event ids. Peak RSS "
        "is the child process's ru_maxrss, Python and libraries included.\n")


if __name__ == "__main__":
    main()
