"""Top-k baselines on MovieLens: per-user 80/20 holdout, 3 seeds, settings tuned on validation.

Ratings >= 4 are the "liked" items (the EMDE thesis setting); users with fewer
than 5 liked items are not evaluated (their histories still train). For each
seed the evaluated users' inputs are split 80/20 again to choose settings on
NDCG@20; the test targets are used once (`sketchrec.pipeline.topk_baselines`).

    python -m benchmarks.topk_baselines
writes docs/benchmarks/topk_baselines.md.
"""

from __future__ import annotations

import time
from pathlib import Path

from sketchrec.data import registry
from sketchrec.eval.report import benchmark_parser, command, markdown_table, page_head, write_page
from sketchrec.pipeline import TOPK_GRIDS, topk_baselines

METRICS = ["Recall@1", "Recall@5", "Recall@10", "Recall@20", "NDCG@5", "NDCG@10", "NDCG@20"]


def main() -> None:
    parser = benchmark_parser(__doc__, datasets=["movielens-100k", "movielens-latest-small"],
                              output=Path(__file__).resolve().parents[1] / "docs/benchmarks/topk_baselines.md")
    parser.add_argument("--min-rating", type=float, default=4.0)
    args = parser.parse_args()
    t0 = time.perf_counter()
    parts = []
    for name in args.datasets:
        inter = registry.load(name)
        histories = inter.select(inter.weight >= args.min_rating).to_sessions()
        results = topk_baselines(histories, name)
        rows = []
        for model, r in results.items():
            rows.append([model, *[f"{100 * r['metrics'][m][0]:.2f} ± {100 * r['metrics'][m][1]:.2f}" for m in METRICS],
                         str(r["n_users"]), f"{r['fit_s']:.2f}", f"{r['score_s']:.2f}",
                         "; ".join(",".join(f"{k}={v}" for k, v in c.items()) for c in r["chosen"]) or "-"])
            print(name, model, {m: round(100 * r["metrics"][m][0], 2) for m in METRICS}, flush=True)
        parts.append("\n".join([f"## {name} ({len(histories):,} users with liked items, {histories.nnz:,} liked "
                                f"ratings, {histories.n_items:,} items)\n", *markdown_table(
                                    ["model", *METRICS, "users", "fit s", "score s", "chosen (per seed)"], rows)]) + "\n")
    grids = "\n".join(f"- `{m}`: {g or 'no parameters'}" for m, g in TOPK_GRIDS.items())
    write_page(args.output, page_head("Top-k baselines: per-user 80/20 holdout (mean ± std over seeds 0, 1, 2)",
                                      command("topk_baselines"), f"; total {time.perf_counter() - t0:.0f} s") +
               f"Ratings >= {args.min_rating:g} are liked items; input items are excluded from the ranking; "
               "metrics in %. Validation grids (NDCG@20 on an inner 80/20 split of the inputs):\n"
               f"{grids}\n\n" + "\n".join(parts))


if __name__ == "__main__":
    main()
