"""Why this item? Per-modality attribution of EMDE recommendations, and whether it is faithful (issue 8).

Data: MovieLens 100k, as in profile_features.py: each user's ratings in time order cut at 70%,
30% of users (seeded) held out. EMDE is trained on the training users' histories (the `emde-profile` preset: target
"holdout", inputs all:cleora:1, all:cleora:3 and all:genres — a genre-indicator modality).
For every test user its top-1 recommendation (unseen movies) is explained with `EMDE.explain`:
per input modality, the drop in the item's score when that modality is occluded.

Faithfulness (a deletion test): occlude the modality the explanation ranks first, last, or one
at random, re-rank all unseen movies (`EMDE.score(..., without=[spec])`) and measure how often the
top-1 changes and where the explained movie falls. A faithful attribution changes the
recommendation most when its top modality is removed.

Meaning check: for users whose recommendation the genre modality drives most, is the movie's
genre mix closer to the history's than for the others? (share of the history's ratings that fall
in the recommended movie's genres).

    python -m benchmarks.emde_explain          # -> docs/benchmarks/emde_explain.md + emde_explain.png
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sketchrec import presets
from sketchrec.data import registry
from sketchrec.data.splits import history_future_split
from sketchrec.eval.attribution import attribution_summary, plot_attribution, unseen_scores
from sketchrec.eval.profiles import load
from sketchrec.eval.report import benchmark_parser, machine_line, markdown_table, timed, write_page
from sketchrec.topk import topk

OUT = Path(__file__).resolve().parents[1] / "docs" / "benchmarks"


def main() -> None:
    args = benchmark_parser(__doc__, dataset="movielens-100k", seed=0, epochs=20, threads=2).parse_args()
    rows, genres, vocab = load(args.dataset)
    titles = registry.load(args.dataset).items.column("title").to_pylist()
    history, future = history_future_split(rows)
    rng = np.random.default_rng(args.seed)
    test = rng.random(len(history)) < 0.3
    h_train, h_test, f_test = history.take(np.flatnonzero(~test)), history.take(np.flatnonzero(test)), \
        future.take(np.flatnonzero(test))
    model, fit_s = timed(lambda: presets.make("emde-profile", epochs=args.epochs, seed=args.seed, threads=args.threads,
                                              progress=False).add_embeddings("genres", genres).fit(h_train))
    specs = list(model.inputs)

    full = unseen_scores(model, h_test)
    top10, _ = topk(full, 10)
    top1 = top10[:, 0]
    future_sets = [set(f_test.items[f_test.indptr[r]:f_test.indptr[r + 1]].tolist()) for r in range(len(f_test))]
    hit10 = np.mean([bool(set(t.tolist()) & s) for t, s in zip(top10, future_sets)])
    explained, explain_s = timed(model.explain, h_test, top1, top_buckets=3)
    explain_ms = 1000 * explain_s / len(h_test)
    parts, hist_genres = attribution_summary(model, h_test, explained, top1, genres, rng)
    summary = {"users": len(h_test), "train_users": int((~test).sum()), "fit_s": fit_s, "hit@10": float(hit10),
               "explain_ms_per_user": explain_ms, **parts}
    plot_attribution(summary, OUT / "emde_explain.png")
    examples = []
    for r in rng.choice(len(h_test), 3, replace=False):
        e = explained[r]
        top_hist = np.argsort(-hist_genres[r])[:3]
        examples.append(f"| {titles[e['item']]} ({', '.join(vocab[j] for j in np.flatnonzero(genres[e['item']]))}) | "
                        + ", ".join(f"{vocab[j]} {100 * hist_genres[r, j]:.0f}%" for j in top_hist) + " | "
                        + ", ".join(f"{s} {e['modalities'][s]:+.2f}" for s in specs) + " | "
                        + ", ".join(f"`{n}` {a:+.2f}" for n, a in e["buckets"]) + " |")
    d = summary["deletion"]
    ga = summary["genre_agreement"]
    lines = ["# Why this item? Per-modality attribution of EMDE recommendations", "", machine_line(), "",
             f"Command: `python benchmarks/emde_explain.py --seed {args.seed} --epochs {args.epochs}`. "
             f"{args.dataset}: {summary['train_users']:,} training users, {summary['users']:,} test users (history = "
             "first 70% of their ratings). EMDE inputs "
             + ", ".join(f"`{s}`" for s in specs) + f"; fit {fit_s:.0f} s; HR@10 of the next 10 ratings "
             f"{100 * hit10:.1f}%. Each test user's top-1 unseen movie explained with `EMDE.explain` "
             f"({explain_ms:.2f} ms per user): a modality's contribution = the drop of the movie's score when that "
             "modality is occluded. Also served: `POST /explain`.", "",
             "![attribution](emde_explain.png)", "",
             *markdown_table(["modality", "share of attribution mass", "drives the top-1 (users)", "mean contribution"],
                             [[s, f"{100 * summary['share'][s]:.1f}%", f"{100 * summary['dominant'][s]:.1f}%",
                               f"{summary['mean_contribution'][s]:+.3f}"] for s in specs]), "",
             "Deletion test — occlude one modality per user and re-rank every unseen movie:", "",
             *markdown_table(["occluded modality", "top-1 changes", "explained movie out of the top-10", "its median rank"],
                             [[arm, f"{100 * d[arm]['changed']:.1f}%", f"{100 * d[arm]['out_of_top10']:.1f}%",
                               f"{d[arm]['median_rank']:.0f}"] for arm in ("top-attributed", "random", "least-attributed")]),
             "",
             f"Meaning check: for the {ga['genres-driven users']:,} users whose top-1 the genre modality drives "
             f"most, {100 * ga['genres-driven']:.1f}% of their history's ratings fall in the recommended movie's "
             f"genres (mean over the movie's genres), against {100 * ga['others']:.1f}% for the other users."
             if ga["genres-driven"] is not None and ga["others"] is not None else "", "",
             "Examples (random test users):", "",
             "| recommended movie | history's top genres | modality contributions | top input buckets (gradient × input) |",
             "|---|---|---|---|", *examples]
    write_page(OUT / "emde_explain.md", "\n".join(lines) + "\n", data=summary, json_default=None, echo=True)


if __name__ == "__main__":
    main()
