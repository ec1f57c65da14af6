"""Cleora speed and memory: sketchrec vs pycleora 3.2.1, same graph, threads, d and iterations.

pycleora runs in its own virtualenv (never a product dependency):
    python3 -m venv /work/peers/cleora && /work/peers/cleora/bin/pip install pycleora==3.2.1 numpy

Graphs: a synthetic power-law bipartite graph (users x items, Zipf item
popularity; synthetic data is for speed only) written as TSV, and the real
Facebook page-page graph. Both libraries read the same file; each run is a
fresh subprocess (benchmarks/peers/cleora_speed.py), so its peak RSS (ru_maxrss) is its own. pycleora uses its
fast path (whiten=False), as the paper's algorithm has no whitening.

    python -m benchmarks.cleora_vs_pycleora --sizes 1000000:10000000 3000000:30000000 --dim 256 --iterations 4
writes docs/benchmarks/cleora_vs_pycleora.md.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from sketchrec.eval.report import benchmark_parser, copy_bandwidth_gbs, machine_line, markdown_table, run_python, write_page
from sketchrec.graph.edge_files import facebook_tsv, write_powerlaw_tsv

ROOT = Path(__file__).resolve().parents[1]
PEER_PYTHON = Path(os.environ.get("PYCLEORA_PYTHON", "/work/peers/cleora/bin/python"))


def main() -> None:
    parser = benchmark_parser(__doc__, threads=os.cpu_count(), output=ROOT / "docs/benchmarks/cleora_vs_pycleora.md")
    parser.add_argument("--sizes", nargs="+", default=["1000000:10000000"],
                        help="synthetic graphs as NODES:EDGES (e.g. 1000000:10000000 3000000:30000000)")
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--iterations", type=int, default=4)
    parser.add_argument("--facebook-dim", type=int, default=1024)
    parser.add_argument("--backends", nargs="+", default=["numba", "torch"])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/sketchrec-bench"))
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    cases = []
    for size in args.sizes:
        nodes, edges = (int(x) for x in size.split(":"))
        synth = args.workdir / f"powerlaw_{nodes}_{edges}.tsv"
        if not synth.exists():
            write_powerlaw_tsv(synth, nodes, edges)
        cases.append((f"power-law bipartite {nodes:,} nodes / {edges:,} edges (synthetic)",
                      synth, args.dim, args.iterations))
    fb = args.workdir / "facebook.tsv"
    if not fb.exists():
        facebook_tsv(fb)
    cases.append(("Facebook page-page 22,470 nodes / 171,002 edges (real)", fb, args.facebook_dim,
                  args.iterations))
    rows = []
    script = ROOT / "benchmarks" / "peers" / "cleora_speed.py"
    for label, path, dim, iters in cases:
        run = [path, dim, iters, args.threads]
        peer = run_python(PEER_PYTHON, [script, "pycleora", *run], threads=args.threads)
        print(label, "pycleora", peer, flush=True)
        for backend in args.backends:
            ours = run_python(sys.executable, [script, "ours", *run, backend], threads=args.threads)
            print(label, backend, ours, flush=True)
            rows.append((label, dim, iters, backend, ours, peer))
    copy_gbs = copy_bandwidth_gbs()
    table = markdown_table(
        ["graph", "d", "iters", "ours", "total s (ours / pycleora)", "speed-up total", "embed s (ours / pycleora)",
         "speed-up embed", "load s (ours / pycleora)", "peak RSS MiB (ours / pycleora)", "gather GB/s (ours)"],
        [[label, dim, iters, backend, f"{o['total_s']:.1f} / {p['total_s']:.1f}", f"{p['total_s'] / o['total_s']:.2f}x",
          f"{o['embed_s']:.1f} / {p['embed_s']:.1f}", f"{p['embed_s'] / o['embed_s']:.2f}x",
          f"{o['load_s']:.1f} / {p['load_s']:.1f}", f"{o['peak_rss_mb']:,.0f} / {p['peak_rss_mb']:,.0f}",
          f"{o['nnz'] * dim * 4 * iters / o['embed_s'] / 1e9:.1f}"] for label, dim, iters, backend, o, p in rows])
    write_page(args.output,
        "# Cleora: sketchrec vs pycleora 3.2.1\n\n"
        f"{machine_line()}; {args.threads} threads for both\n\n"
        f"Command: `python benchmarks/cleora_vs_pycleora.py --sizes {' '.join(args.sizes)} "
        f"--dim {args.dim} --iterations {args.iterations}`\n\n"
        "Total = read the TSV + build the graph + embed; both read the same file. pycleora: "
        "`SparseMatrix.from_iterator(lines, 'a b')` then `embed(..., whiten=False)` (its fast path). "
        "Ours: `Graph.read_edges` (DuckDB + arrow) -> `Cleora.fit`. "
        "Speed-up = pycleora time / ours. Gather GB/s = stored non-zeros x d x 4 bytes x iterations / "
        "embed time (the rows of T read by the propagation; embed time also covers T0 and set-up, so "
        f"this understates the kernel). Machine reference: a numpy copy of 1 GiB moves {copy_gbs:.1f} GB/s "
        "(read + write).\n\n" + "\n".join(table) + "\n")


if __name__ == "__main__":
    main()
