"""EMDE top-k on MovieLens against EASE / item-kNN / popularity, with a modality ablation.

Protocol (the thesis's, as `benchmarks/topk_baselines.py`): ratings >= 4 are
"liked"; every user with >= 5 liked items has a seeded random 20% of them held
out as targets; the remaining 80% are the input; input items are excluded from
the ranking. Ratings < 4 ("disliked") are an extra input modality for the
variants that use them (all of a user's disliked items are known at test
time; they are never targets and are not excluded from the ranking, so every
model ranks the same candidates). EMDE variants are selected on an inner
80/20 split of the evaluated users' inputs (seed 0: epochs by NDCG@20 after
every epoch); the test targets are used once per seed.

    python benchmarks/emde_topk.py [--datasets movielens-100k movielens-latest-small]
writes docs/benchmarks/emde_topk.md (and .json).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
if (ROOT.parent / "shared/datasets").exists():  # the staged copies beside the repository
    os.environ.setdefault("SKETCHREC_DATA", str(ROOT.parent / "shared/datasets"))

from sketchrec.data import registry  # noqa: E402
from sketchrec.data.sessions import concat, merge_rows, user_holdout  # noqa: E402
from sketchrec.eval.protocols import evaluate_topk  # noqa: E402
from sketchrec.eval.report import machine_line  # noqa: E402
from sketchrec.models import EASE, EMDE, ItemKNN, Popularity  # noqa: E402

METRICS = ["Recall@1", "Recall@5", "Recall@10", "Recall@20", "NDCG@5", "NDCG@10", "NDCG@20"]
KS = (1, 5, 10, 20)

#: EMDE variants: name -> (parameters, needs disliked clicks, extra sources)
#: (chosen on ML-100K validation among hidden 256-2048, 0-1 residual blocks, dropout, weight decay,
#: learning rates, identity vs Cleora codes and denoising targets: see the notes in the table)
COMMON = dict(target="holdout", n_sketches=10, n_bits=7, hidden=512, n_blocks=0, batch_norm=False,
              batch_size=64, lr=3e-3, lr_decay=0.99, weight_decay=1e-4, decay=None, progress=False)
VARIANTS = {
    "EMDE liked (cleora:1)": dict(inputs=("liked:cleora:1",), outputs=("cleora:1",)),
    "EMDE liked (cleora:1+3)": dict(inputs=("liked:cleora:1", "liked:cleora:3"), outputs=("cleora:1", "cleora:3")),
    "EMDE liked+disliked": dict(inputs=("liked:cleora:1", "liked:cleora:3", "disliked:cleora:1"),
                                outputs=("cleora:1", "cleora:3")),
    "EMDE liked+disliked+genres": dict(inputs=("liked:cleora:1", "liked:cleora:3", "disliked:cleora:1",
                                               "liked:genres"),
                                       outputs=("cleora:1", "cleora:3")),
    "EMDE liked+disliked+genres+titles": dict(inputs=("liked:cleora:1", "liked:cleora:3", "disliked:cleora:1",
                                                      "liked:genres", "liked:titles"),
                                              outputs=("cleora:1", "cleora:3")),
}


def load(name: str):
    """All ratings as weighted user rows, the item genre multi-hot matrix, MiniLM title vectors."""
    inter = registry.load(name)
    cache = ROOT / f"runs/emde_topk/{name}.titles.npy"
    if cache.exists():
        titles = np.load(cache)
    else:
        from sketchrec.embedders import TextEncoder
        titles = TextEncoder(threads=1, progress=False).encode(inter.items.column("title").to_pylist())
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.save(cache, titles)
    rows = inter.to_sessions()
    if "genre_matrix" in inter.meta:
        genres = inter.meta["genre_matrix"].astype(np.float32)
    else:
        names = inter.items.column("genres").to_pylist()
        vocab = sorted({g for gs in names for g in (gs or [])})
        index = {g: i for i, g in enumerate(vocab)}
        genres = np.zeros((inter.n_items, len(vocab)), np.float32)
        r = np.repeat(np.arange(len(names)), [len(g or []) for g in names])
        c = np.array([index[g] for gs in names for g in (gs or [])], dtype=np.int64)
        genres[r, c] = 1.0
    return rows, {"genres": genres, "titles": titles}


def split(rows, seed: int, like: float = 4.0):
    """(train rows with all ratings, liked inputs, liked targets, disliked of evaluated users)."""
    liked = rows.filter_clicks(rows.weights >= like)
    disliked = rows.filter_clicks(rows.weights < like)
    inputs, targets, kept = user_holdout(liked, test_share=0.2, min_items=5, seed=seed)
    others = np.setdiff1d(np.arange(len(rows)), kept)
    train = concat([merge_rows([inputs, disliked.take(kept)]), rows.take(others)])
    return train, inputs, targets, disliked.take(kept)


def run_emde(params, sources, train, inputs, targets, disliked, validation=None):
    model = EMDE(**{**COMMON, **params})
    for name, vectors in sources.items():
        if any(s.endswith(":" + name) for s in params["inputs"]):
            model.add_embeddings(name, vectors)
    uses_disliked = any(s.startswith("disliked:") for s in params["inputs"])
    if not uses_disliked:
        train = train.filter_clicks(train.weights >= 4.0)
    model.target_view = "liked" if uses_disliked else "all"
    t0 = time.perf_counter()
    model.fit(train, validation=validation)
    fit_s = time.perf_counter() - t0
    query = merge_rows([inputs, disliked]) if uses_disliked else inputs
    metrics, score_s = evaluate_topk(model, query, targets, ks=KS, exclude=inputs, progress=False)
    return model, metrics, fit_s, score_s


PRIORS = (1.0, 2.0, 4.0, 8.0, 16.0)


def choose_epochs(params, sources, rows, max_epochs: int) -> tuple[int, float, list]:
    """Best epoch count, then readout prior weight, on an inner split of seed 0's inputs
    (test targets untouched)."""
    train, inputs, targets, disliked = split(rows, 0)
    # inner split: the evaluated users' inputs split again; their disliked items stay input
    v_in, v_tgt, v_kept = user_holdout(inputs, test_share=0.2, min_items=5, seed=1000)
    others = np.setdiff1d(np.arange(len(train)), v_kept)
    v_train = concat([merge_rows([v_in, disliked.take(v_kept)]), train.take(others)])
    uses_disliked = any(s.startswith("disliked:") for s in params["inputs"])
    query = merge_rows([v_in, disliked.take(v_kept)]) if uses_disliked else v_in
    model, *_ = run_emde({**params, "epochs": max_epochs}, sources, v_train, v_in, v_tgt,
                         disliked.take(v_kept), validation=(query, v_tgt, v_in))
    by_prior = {}
    for prior in PRIORS:      # the best epoch's weights are loaded; only the readout changes
        model.prior, model._readout = prior, None
        by_prior[prior] = evaluate_topk(model, query, v_tgt, ks=(20,), exclude=v_in, progress=False)[0]["NDCG@20"]
    prior = max(by_prior, key=by_prior.get)
    return model.best_epoch_, prior, model.history_, by_prior[prior]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["movielens-100k", "movielens-latest-small"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--max-epochs", type=int, default=60)
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS))
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all cores)")
    parser.add_argument("--output", type=Path, default=ROOT / "docs/benchmarks/emde_topk.md")
    args = parser.parse_args()
    COMMON["threads"] = args.threads
    t_start = time.perf_counter()
    results: dict = {}
    for name in args.datasets:
        rows, sources = load(name)
        res = results[name] = {}
        # baselines with the settings chosen on validation in docs/benchmarks/topk_baselines.md
        baselines = {"pop": lambda: Popularity(), "iknn": lambda: ItemKNN(neighbours=0, alpha=0.5, history="all"),
                     "ease": lambda: EASE(lam=250.0)}
        for variant in [*baselines, *args.variants]:
            per_seed, fit_s, score_s, chosen = [], [], [], {}
            if variant in VARIANTS:
                epochs, prior, history, ndcg = choose_epochs(VARIANTS[variant], sources, rows, args.max_epochs)
                chosen = {"epochs": epochs, "prior": prior, "validation_ndcg20": round(ndcg, 4)}
            for seed in args.seeds:
                train, inputs, targets, disliked = split(rows, seed)
                if variant in baselines:
                    model = baselines[variant]()
                    t0 = time.perf_counter()
                    model.fit(train.filter_clicks(train.weights >= 4.0))
                    fit_s.append(time.perf_counter() - t0)
                    m, s = evaluate_topk(model, inputs, targets, ks=KS, progress=False)
                else:
                    params = {**VARIANTS[variant], "epochs": chosen["epochs"], "prior": chosen["prior"],
                              "seed": seed}
                    _, m, f, s = run_emde(params, sources, train, inputs, targets, disliked)
                    fit_s.append(f)
                per_seed.append(m)
                score_s.append(s)
            res[variant] = {"metrics": {k: (float(np.mean([m[k] for m in per_seed])),
                                            float(np.std([m[k] for m in per_seed], ddof=1)) if len(per_seed) > 1
                                            else 0.0) for k in METRICS},
                            "fit_s": float(np.mean(fit_s)), "score_s": float(np.mean(score_s)),
                            "users": int(per_seed[0]["n_rows"]), "chosen": chosen}
            print(name, variant, {k: round(100 * v[0], 2) for k, v in res[variant]["metrics"].items()},
                  chosen, flush=True)
    write(args, results, time.perf_counter() - t_start)


def write(args, results, seconds):
    parts = []
    for name, res in results.items():
        head = ["model", *METRICS, "users", "fit s", "score s", "chosen on validation"]
        lines = [f"## {name}\n", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for variant, r in res.items():
            cells = [f"{100 * r['metrics'][m][0]:.2f} ± {100 * r['metrics'][m][1]:.2f}" for m in METRICS]
            chosen = ", ".join(f"{k}={v}" for k, v in r["chosen"].items()) or "-"
            lines.append("| " + " | ".join([variant, *cells, str(r["users"]), f"{r['fit_s']:.1f}",
                                             f"{r['score_s']:.2f}", chosen]) + " |")
        parts.append("\n".join(lines) + "\n")
    variants = "\n".join(f"- {v}: inputs {VARIANTS[v]['inputs']}, outputs {VARIANTS[v]['outputs']}"
                         for v in args.variants)
    args.output.write_text(
        "# EMDE top-k on MovieLens (mean ± std over seeds " + ", ".join(map(str, args.seeds)) + ")\n\n"
        f"{machine_line()}; total {seconds:.0f} s\n\n"
        f"Command: `python benchmarks/emde_topk.py --datasets {' '.join(args.datasets)}`\n\n"
        "Protocol: ratings >= 4 are liked; per user a seeded 20% of liked items are the targets, the "
        "rest the input; input items are excluded from the ranking; metrics in %. Disliked items "
        "(ratings < 4) are an input modality for the variants named so (never excluded from the "
        "ranking, never targets). EMDE epochs, then the readout's popularity-prior weight "
        f"{PRIORS}, chosen on an inner 80/20 split of seed 0's inputs (NDCG@20); baselines use the settings chosen on validation in `topk_baselines.md` "
        "(EASE lam=250, item-kNN full history).\n\n"
        f"EMDE common settings: {COMMON}\n\nVariants:\n{variants}\n\n" + "\n".join(parts))
    args.output.with_suffix(".json").write_text(json.dumps(results, indent=1))
    print(f"written {args.output}")


if __name__ == "__main__":
    main()
