"""Robustness of the recommenders to broken logging (issue 8: the interaction modality).

Sessions (Diginetica; by default the most recent --train-share of its training sessions, for
time): the training sessions *and* the test prefixes are corrupted — events dropped, duplicated,
or random events added (popularity-drawn items), each at --severities (a share of the clicks) —
while the targets stay clean. Models: V-SKNN, EMDE, SR-GNN (--srgnn-epochs, lr decay after 2).
Reported: MRR@20 / HR@20 and the drop against the same model on clean data.

Graph (Cleora, facebook-page-page link prediction): the training edges are corrupted — a share
dropped, or the same share of random edges added — the held-out test edges stay clean.

Item text (corrupted titles -> recommendation stability): fashion catalogue titles corrupted by
each text aspect (severity 2); item-to-item recommendations from MiniLM title vectors; Jaccard
overlap of the top-10 lists with the clean ones.

    python -m benchmarks.robustness_events          # -> docs/benchmarks/robustness_events.md
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from sketchrec.data import registry
from sketchrec.eval.protocols import evaluate_next_item
from sketchrec.eval.report import benchmark_parser, command, host_line, read_json, timed, write_page
from sketchrec.robustness.events import CORRUPTIONS, corrupt_edges, events_report_lines

OUT = Path(__file__).resolve().parents[1] / "docs" / "benchmarks"


def session_models(args):
    from sketchrec.models import EMDE, SRGNN, VSKNN
    return {"V-SKNN": lambda: VSKNN(),
            "EMDE": lambda: EMDE(epochs=args.emde_epochs, threads=args.threads, progress=False),
            "SR-GNN": lambda: SRGNN(epochs=args.srgnn_epochs, lr_decay_every=2, threads=args.threads, progress=False)}


def sessions_part(args) -> list[dict]:
    bench = registry.load("diginetica")
    keep = np.arange(len(bench.train))[-int(len(bench.train) * args.train_share):]
    train = bench.train.take(keep)
    rows = []
    conditions = [("clean", 0.0)] + [(c, p) for c in CORRUPTIONS for p in args.severities]
    for name, make in session_models(args).items():
        if name not in args.models:
            continue
        for corruption, p in conditions:
            fn = CORRUPTIONS.get(corruption)
            tr = train if fn is None else fn(train, p, seed=args.seed)
            prefixes = bench.test_prefixes if fn is None else fn(bench.test_prefixes, p, seed=args.seed + 1)
            model, fit_s = timed(lambda: make().fit(tr))
            metrics, _ = evaluate_next_item(model, prefixes, bench.test_targets, progress=False)
            rows.append({"model": name, "corruption": corruption, "severity": p, "fit_s": fit_s,
                         "MRR@20": metrics["MRR@20"], "HR@20": metrics["HR@20"]})
            print(rows[-1], flush=True)
    return rows


def graph_part(args) -> list[dict]:
    from sketchrec.eval.graph_tasks import linkpred_evaluate, split_edges
    from sketchrec.graph import Cleora, Graph
    ds = registry.load("facebook-page-page")
    train, test = split_edges(ds.edges, 0.1, seed=args.seed)
    rng = np.random.default_rng(args.seed)
    rows = []
    for corruption, p in [("clean", 0.0)] + [(c, p) for c in ("drop", "add") for p in args.severities]:
        edges = corrupt_edges(train, corruption, p, ds.n_nodes, rng)
        graph = Graph.from_edges(edges[:, 0], edges[:, 1], n_nodes=ds.n_nodes)
        vectors = Cleora(dim=1024, iterations=4, seed=args.seed).fit(graph).vectors_
        m = linkpred_evaluate(vectors, edges, test, seed=args.seed)
        rows.append({"model": "Cleora", "corruption": corruption, "severity": p, "MRR": m["MRR"], "HR@10": m["HR@10"]})
        print(rows[-1], flush=True)
    return rows


def text_part(args) -> list[dict]:
    from sketchrec.embedders.text import TextEncoder
    from sketchrec.topk import topk
    from sketchrec.robustness import ASPECTS, make
    cat = registry.load("fashion-catalog")
    titles = [t or "" for t in cat.column("productDisplayName").to_pylist()]
    rng = np.random.default_rng(args.seed)
    sample = np.sort(rng.choice(len(titles), min(args.text_items, len(titles)), replace=False))
    titles = [titles[i] for i in sample]
    enc = TextEncoder(threads=args.threads, progress=False)

    def neighbours(vectors):
        sims = vectors @ vectors.T
        np.fill_diagonal(sims, -np.inf)
        return topk(sims, 10)[0]
    clean = neighbours(enc.encode(titles))
    rows = []
    for aspect in ASPECTS:
        noisy = neighbours(enc.encode(make(aspect, 2, args.seed).apply_many(titles)))
        jac = np.mean([len(set(a) & set(b)) / len(set(a) | set(b)) for a, b in zip(clean, noisy)])
        rows.append({"aspect": aspect, "jaccard@10": float(jac)})
        print(rows[-1], flush=True)
    return rows


def main() -> None:
    parser = benchmark_parser(__doc__, seed=0, threads=2)
    parser.add_argument("--parts", nargs="+", default=["graph", "text", "sessions"])
    parser.add_argument("--models", nargs="+", default=["V-SKNN", "EMDE", "SR-GNN"])
    parser.add_argument("--severities", nargs="+", type=float, default=[0.1, 0.3])
    parser.add_argument("--train-share", type=float, default=0.25)
    parser.add_argument("--emde-epochs", type=int, default=3)
    parser.add_argument("--srgnn-epochs", type=int, default=3)
    parser.add_argument("--text-items", type=int, default=5000)
    args = parser.parse_args()
    results_file = OUT / "robustness_events.json"
    results = read_json(results_file, {})
    for part in args.parts:
        results[part] = {"graph": graph_part, "text": text_part, "sessions": sessions_part}[part](args)
        results_file.write_text(json.dumps(results, indent=1))
    lines = ["# Robustness to broken logging and noisy item text", "",
             f"{host_line()}. Command: {command('robustness_events', severities=args.severities)}.", ""]
    lines += events_report_lines(results, args.train_share)
    write_page(OUT / "robustness_events.md", "\n".join(lines) + "\n", echo=True)

if __name__ == "__main__":
    main()
