"""Top-k baselines on MovieLens: per-user 80/20 holdout, 3 seeds, settings tuned on validation.

Ratings >= 4 are the "liked" items (the EMDE thesis setting); users with fewer
than 5 liked items are not evaluated (their histories still train). For each
seed the evaluated users' inputs are split 80/20 again to choose settings on
NDCG@20; the test targets are used once.

    python benchmarks/topk_baselines.py
writes docs/benchmarks/topk_baselines.md.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
if (ROOT.parent / "shared/datasets").exists():  # the staged copies beside the repository
    os.environ.setdefault("SKETCHREC_DATA", str(ROOT.parent / "shared/datasets"))

from sketchrec.data import registry  # noqa: E402
from sketchrec.eval.report import machine_line  # noqa: E402
from sketchrec.pipeline import TOPK_GRIDS, topk_baselines  # noqa: E402

METRICS = ["Recall@1", "Recall@5", "Recall@10", "Recall@20", "NDCG@5", "NDCG@10", "NDCG@20"]


def liked_histories(name: str, min_rating: float):
    inter = registry.load(name)
    return inter.select(inter.weight >= min_rating).to_sessions()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["movielens-100k", "movielens-latest-small"])
    parser.add_argument("--min-rating", type=float, default=4.0)
    parser.add_argument("--output", type=Path, default=ROOT / "docs/benchmarks/topk_baselines.md")
    args = parser.parse_args()
    t0 = time.perf_counter()
    parts = []
    for name in args.datasets:
        histories = liked_histories(name, args.min_rating)
        results = topk_baselines(histories, name)
        head = ["model", *METRICS, "users", "fit s", "score s", "chosen (per seed)"]
        lines = [f"## {name} ({len(histories):,} users with liked items, {histories.nnz:,} liked ratings, "
                 f"{histories.n_items:,} items)\n", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for model, r in results.items():
            cells = [f"{100 * r['metrics'][m][0]:.2f} ± {100 * r['metrics'][m][1]:.2f}" for m in METRICS]
            chosen = "; ".join(",".join(f"{k}={v}" for k, v in c.items()) for c in r["chosen"]) or "-"
            lines.append("| " + " | ".join([model, *cells, str(r["n_users"]), f"{r['fit_s']:.2f}",
                                             f"{r['score_s']:.2f}", chosen]) + " |")
            print(name, model, {m: round(100 * r["metrics"][m][0], 2) for m in METRICS}, flush=True)
        parts.append("\n".join(lines) + "\n")
    grids = "\n".join(f"- `{m}`: {g or 'no parameters'}" for m, g in TOPK_GRIDS.items())
    args.output.write_text(
        "# Top-k baselines: per-user 80/20 holdout (mean ± std over seeds 0, 1, 2)\n\n"
        f"{machine_line()}; total {time.perf_counter() - t0:.0f} s\n\n"
        "Command: `python benchmarks/topk_baselines.py`\n\n"
        f"Ratings >= {args.min_rating:g} are liked items; input items are excluded from the ranking; "
        "metrics in %. Validation grids (NDCG@20 on an inner 80/20 split of the inputs):\n"
        f"{grids}\n\n" + "\n".join(parts))
    print(f"written {args.output}")


if __name__ == "__main__":
    main()
