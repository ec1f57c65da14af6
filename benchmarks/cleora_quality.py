"""Cleora embedding quality, sketchrec vs pycleora 3.2.1: same d, same protocols, same tuned evaluator.

Every method (ours, ours + self-loops, pycleora) is embedded at iterations 1-8 and goes through the
same evaluator (sketchrec.eval.graph_tasks), which picks each method's own iteration count on
validation data, never on the test part. Link prediction (Facebook page-page): 10% of the edges held
out for test and 5% for validation (seed 0), a held-out edge going back to training where its end
would lose its last training edge; counts chosen on validation MRR with the graph minus both, test
scored with the graph minus the test edges. Node classification: Cora, CiteSeer, PubMed (Planetoid
split, and seeded stratified 80/20 splits), LastFM-Asia, Deezer Europe, BlogCatalog (80/20; multi-label):
standardised embeddings, C and the count chosen on validation nodes (Planetoid's; else 20% of each
seed's training part). pycleora runs in its own virtualenv ($PYCLEORA_PYTHON, benchmarks/peers).

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 python -m benchmarks.cleora_quality --dim 1024
(one thread: the solver's threads spin-wait on a busy machine) writes docs/benchmarks/cleora_quality.md
and .json; a section already in that .json with the same settings (and seeds) is reused: rerun to resume.
"""

from __future__ import annotations

import logging
import os
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

from sketchrec.data import registry
from sketchrec.eval import graph_tasks as gt
from sketchrec.eval.report import benchmark_parser, command, page_head, read_json, write_page

ROOT = Path(__file__).resolve().parents[1]
PEER_PYTHON = Path(os.environ.get("PYCLEORA_PYTHON", "/work/peers/cleora/bin/python"))
OLD = ROOT / "docs/benchmarks/cleora_quality_before_issue32.json"  # the previous table's figures


def pycleora(*args, edges=None, outputs=()) -> list[np.ndarray]:
    """benchmarks/peers/pycleora_vectors.py in pycleora's virtualenv, in a temporary folder ({tmp} in
    `args`; `edges` saved there as edges.npy first): the arrays it wrote there named in `outputs`."""
    with tempfile.TemporaryDirectory() as tmp:
        if edges is not None:
            np.save(f"{tmp}/edges.npy", edges)
        subprocess.run([str(PEER_PYTHON), str(ROOT / "benchmarks/peers/pycleora_vectors.py"),
                        *(str(a).format(tmp=tmp) for a in args)], check=True)
        return [np.load(f"{tmp}/{name}") for name in outputs]


def init_diagnostic(dim: int) -> list[str]:
    from sketchrec.graph import initial_vectors
    peer = gt.mean_abs_cosine(pycleora("init", 2000, dim, "{tmp}/t0.npy", outputs=["t0.npy"])[0])
    ours = gt.mean_abs_cosine(initial_vectors(2000, dim, 0))
    return [f"## Initial vectors, d={dim}\n",
            f"Mean |cosine| between 500 rows of T0: ours {ours:.4f}, pycleora `initialize_deterministically` "
            f"{peer:.4f} (independent uniform rows: about {np.sqrt(2 / np.pi / dim):.4f}). Correlated starting "
            "rows make every node's embedding share a common component that the propagation keeps "
            "(see the ablation under link prediction).\n"]


def peer_embeddings(edges: np.ndarray, n: int, dim: int, iterations: list[int]) -> dict[int, np.ndarray]:
    """pycleora embeddings (rows in our node order) for each iteration count."""
    return dict(zip(iterations, pycleora("embed", "{tmp}/edges.npy", n, dim, ",".join(map(str, iterations)), "{tmp}/emb",
                                         edges=edges, outputs=[f"emb_{it}.npy" for it in iterations])))


def link_prediction(dim: int, iterations: list[int]) -> dict:
    ds = registry.load("facebook-page-page")
    train, val, test = gt.split_edges_keeping_nodes(ds.edges, 0.1, 0.05, seed=0)
    rows, summary = gt.linkpred_comparison(lambda e: {"ours": gt.cleora_by_iterations(e, ds.n_nodes, dim, iterations),
                                                      "pycleora": peer_embeddings(e, ds.n_nodes, dim, iterations)},
                                           train, val, test, iterations)
    fit = np.vstack([train, val])
    lines = [f"## Link prediction: Facebook page-page, d={dim} ({len(fit):,} train edges, {len(test):,} test edges "
             f"held out, {gt.isolated_nodes_note(fit, ds.n_nodes)}; counts chosen with {len(val):,} of the train "
             "edges held out as validation)\n", *gt.linkpred_tables(rows, summary)]
    swapped = gt.propagated_linkpred(pycleora("t0", "{tmp}/edges.npy", ds.n_nodes, dim, "{tmp}/t0.npy", edges=fit,
                                              outputs=["t0.npy"])[0], fit, test, ds.n_nodes)
    lines.append(f"\nAblation, 1 iteration: our propagation started from pycleora's T0 gives MRR {swapped['MRR']:.4f}, "
                 f"HR@10 {swapped['HR@10']:.4f} (pycleora's own in the table above): initialisation, not propagation.\n"
                 "\nPublished (Cleora paper, Facebook): Cleora MRR 0.0724, HR@10 0.1761; PBG 0.0817 / 0.2133; GOSH "
                 "0.0924 / 0.2319.\n")
    return {"lines": lines, "summary": summary}


def main() -> None:
    parser = benchmark_parser(__doc__, datasets=["cora", "citeseer", "lastfm-asia", "pubmed", "deezer-europe",
                                                 "blogcatalog"], seeds=[0, 1, 2, 3, 4],
                              output=ROOT / "docs/benchmarks/cleora_quality.md")
    parser.add_argument("--dim", type=int, default=1024)
    parser.add_argument("--iterations", type=int, nargs="+", default=list(range(1, 9)))
    parser.add_argument("--skip-linkpred", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    params = {"dim": args.dim, "iterations": args.iterations}
    data = read_json(args.output.with_suffix(".json"), {})
    data = data if data.get("params") == params else {"params": params, "nodeclf": {}, "seconds": 0.0}
    t0, seconds = time.perf_counter(), data["seconds"]
    head = init_diagnostic(args.dim)
    if not args.skip_linkpred and "linkpred" not in data:
        data["linkpred"] = link_prediction(args.dim, args.iterations)
    for name in [None, *args.datasets]:  # None: the page before the first dataset
        if name is not None and data["nodeclf"].get(name, {}).get("seeds") != args.seeds:
            ds = registry.load(name)
            lines, summary = gt.nodeclf_comparison(name, ds, args.dim, args.iterations, peer_embeddings(
                ds.edges, ds.n_nodes, args.dim, args.iterations), seeds=args.seeds)
            data["nodeclf"][name] = {"lines": lines, "summary": summary, "seeds": args.seeds}
        data["seconds"] = seconds + time.perf_counter() - t0
        todo = [d for d in args.datasets if data["nodeclf"].get(d, {}).get("seeds") != args.seeds]
        state = f"; total {data['seconds']:.0f} s" + (f"; PARTIAL, still to run: {', '.join(todo)}" if todo else "")
        write_page(args.output, page_head(
            "Cleora quality: sketchrec vs pycleora 3.2.1 (same d, protocols and validation-tuned evaluator)",
            command("cleora_quality", dim=args.dim, seeds=args.seeds), state) +
            "Both: left-Markov propagation, L2 row normalisation, no whitening (pycleora `whiten=False`); graphs "
            "undirected and unweighted. The random initialisations differ (each library's own).\n\n"
            "## What changed (issue 32)\n\n" + gt.changes_paragraph(read_json(OLD), data.get("linkpred", {}).get(
                "summary"), {d: r["summary"] for d, r in data["nodeclf"].items()}) + "\n\n" + "\n".join(
                head + data.get("linkpred", {}).get("lines", []) + gt.nodeclf_head(args.dim) + [
                    line for r in data["nodeclf"].values() for line in r["lines"]]), data)


if __name__ == "__main__":
    main()
