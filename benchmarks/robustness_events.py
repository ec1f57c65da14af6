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

from sketchrec.data import registry
from sketchrec.eval.report import benchmark_parser, command, host_line, read_json, write_page
from sketchrec.robustness.events import (events_report_lines, graph_robustness, session_robustness,
                                         text_neighbour_stability)

OUT = Path(__file__).resolve().parents[1] / "docs" / "benchmarks"


def session_models(args):
    from sketchrec.models import EMDE, SRGNN, VSKNN
    return {"V-SKNN": lambda: VSKNN(),
            "EMDE": lambda: EMDE(epochs=args.emde_epochs, threads=args.threads, progress=False),
            "SR-GNN": lambda: SRGNN(epochs=args.srgnn_epochs, lr_decay_every=2, threads=args.threads, progress=False)}


def sessions_part(args) -> list[dict]:
    models = {name: make for name, make in session_models(args).items() if name in args.models}
    return session_robustness(registry.load("diginetica"), models, args.severities, args.seed, args.train_share)


def graph_part(args) -> list[dict]:
    return graph_robustness(registry.load("facebook-page-page"), args.severities, args.seed)


def text_part(args) -> list[dict]:
    from sketchrec.embedders.text import TextEncoder
    titles = [t or "" for t in registry.load("fashion-catalog").column("productDisplayName").to_pylist()]
    return text_neighbour_stability(titles, TextEncoder(threads=args.threads, progress=False).encode, args.text_items,
                                    args.seed)


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
