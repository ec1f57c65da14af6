"""EMDE top-k on MovieLens against EASE / item-kNN / popularity, with a modality ablation.

Protocol (the thesis's, as `benchmarks/topk_baselines.py`; `sketchrec.data.splits.
rated_holdout_split`): ratings >= 4 are "liked"; every user with >= 5 liked items has a seeded
random 20% of them held out as targets; the remaining 80% are the input; input items are
excluded from the ranking. Ratings < 4 ("disliked") are an extra input modality for the
variants that use them (all of a user's disliked items are known at test time; they are never
targets and are not excluded from the ranking, so every model ranks the same candidates). EMDE
variants are selected on an inner 80/20 split of the evaluated users' inputs (seed 0: epochs by
NDCG@20 after every epoch, `select_epochs_then_refit`); the test targets are used once per seed.

    python -m benchmarks.emde_topk [--datasets movielens-100k movielens-latest-small]
writes docs/benchmarks/emde_topk.md (and .json).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from sketchrec import presets
from sketchrec.data import registry
from sketchrec.data.sessions import merge_rows
from sketchrec.data.splits import rated_holdout_split
from sketchrec.eval.protocols import evaluate_topk, select_epochs_then_prior
from sketchrec.eval.report import benchmark_parser, command, page_head, seeds_mean_std, timed, topk_sections, write_page
from sketchrec.models import EASE, EMDE, ItemKNN, Popularity

ROOT = Path(__file__).resolve().parents[1]
METRICS = ["Recall@1", "Recall@5", "Recall@10", "Recall@20", "NDCG@5", "NDCG@10", "NDCG@20"]
KS = (1, 5, 10, 20)
#: EMDE settings common to every variant: the `emde-topk` preset (see its note)
COMMON = {**presets.get("emde-topk"), "progress": False}
#: EMDE variants: name -> inputs and outputs
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
PRIORS = (1.0, 2.0, 4.0, 8.0, 16.0)


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
    if "genre_matrix" in inter.meta:
        genres = inter.meta["genre_matrix"].astype(np.float32)
    else:
        names = inter.items.column("genres").to_pylist()
        vocab = sorted({g for gs in names for g in (gs or [])})
        genres = np.zeros((inter.n_items, len(vocab)), np.float32)
        genres[np.repeat(np.arange(len(names)), [len(g or []) for g in names]),
               [vocab.index(g) for gs in names for g in (gs or [])]] = 1.0
    return inter.to_sessions(), {"genres": genres, "titles": titles}


def uses_disliked(params) -> bool:
    return any(s.startswith("disliked:") for s in params["inputs"])


def emde(params, sources) -> EMDE:
    """An unfitted EMDE variant with its extra sources added."""
    model = EMDE(**{**COMMON, **params})
    for name, vectors in sources.items():
        if any(s.endswith(":" + name) for s in params["inputs"]):
            model.add_embeddings(name, vectors)
    model.target_view = "liked" if uses_disliked(params) else "all"
    return model


def run_emde(params, sources, train, inputs, targets, disliked):
    model, fit_s = timed(emde(params, sources).fit,
                         train if uses_disliked(params) else train.filter_clicks(train.weights >= 4.0))
    query = merge_rows([inputs, disliked]) if uses_disliked(params) else inputs
    metrics, score_s = evaluate_topk(model, query, targets, ks=KS, exclude=inputs, progress=False)
    return model, metrics, fit_s, score_s


def choose_epochs(params, sources, rows, max_epochs: int) -> tuple[int, float, list, float]:
    """Best epoch count, then readout prior weight, on an inner split of seed 0's inputs
    (test targets untouched): (epochs, prior, validation history, the prior's validation NDCG@20)."""
    # the inner split: seed 0's training rows split again the same way (the evaluated users' inputs
    # split 80/20; their disliked items stay input; everyone else trains whole)
    v_train, v_in, v_tgt, v_disliked = rated_holdout_split(rated_holdout_split(rows, 0)[0], 1000)
    query = merge_rows([v_in, v_disliked]) if uses_disliked(params) else v_in
    train = v_train if uses_disliked(params) else v_train.filter_clicks(v_train.weights >= 4.0)
    chosen, prior, ndcg = select_epochs_then_prior(lambda epochs: emde({**params, "epochs": epochs}, sources), train,
                                                   query, v_tgt, v_in, max_epochs=max_epochs, priors=PRIORS)
    return chosen.epochs, prior, chosen.history, ndcg


def main() -> None:
    parser = benchmark_parser(__doc__, datasets=["movielens-100k", "movielens-latest-small"], seeds=[0, 1, 2],
                              threads=None, output=ROOT / "docs/benchmarks/emde_topk.md")
    parser.add_argument("--max-epochs", type=int, default=60)
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS))
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
                train, inputs, targets, disliked = rated_holdout_split(rows, seed)
                if variant in baselines:
                    model, f = timed(baselines[variant]().fit, train.filter_clicks(train.weights >= 4.0))
                    fit_s.append(f)
                    m, s = evaluate_topk(model, inputs, targets, ks=KS, progress=False)
                else:
                    params = {**VARIANTS[variant], "epochs": chosen["epochs"], "prior": chosen["prior"],
                              "seed": seed}
                    _, m, f, s = run_emde(params, sources, train, inputs, targets, disliked)
                    fit_s.append(f)
                per_seed.append(m)
                score_s.append(s)
            res[variant] = {"metrics": seeds_mean_std(per_seed, METRICS), "fit_s": float(np.mean(fit_s)),
                            "score_s": float(np.mean(score_s)), "users": int(per_seed[0]["n_rows"]), "chosen": chosen}
            print(name, variant, {k: round(100 * v[0], 2) for k, v in res[variant]["metrics"].items()},
                  chosen, flush=True)
    write(args, results, time.perf_counter() - t_start)


def write(args, results, seconds):
    parts = topk_sections(results, METRICS)
    variants = "\n".join(f"- {v}: inputs {VARIANTS[v]['inputs']}, outputs {VARIANTS[v]['outputs']}"
                         for v in args.variants)
    write_page(args.output,
               page_head("EMDE top-k on MovieLens (mean ± std over seeds " + ", ".join(map(str, args.seeds)) + ")",
                         command("emde_topk", datasets=args.datasets), f"; total {seconds:.0f} s") +
               "Protocol: ratings >= 4 are liked; per user a seeded 20% of liked items are the targets, the "
               "rest the input; input items are excluded from the ranking; metrics in %. Disliked items "
               "(ratings < 4) are an input modality for the variants named so (never excluded from the "
               "ranking, never targets). EMDE epochs, then the readout's popularity-prior weight "
               f"{PRIORS}, chosen on an inner 80/20 split of seed 0's inputs (NDCG@20); baselines use the "
               "settings chosen on validation in `topk_baselines.md` (EASE lam=250, item-kNN full history).\n\n"
               f"EMDE common settings: {COMMON}\n\nVariants:\n{variants}\n\n" + "\n".join(parts), data=results,
               json_default=None)


if __name__ == "__main__":
    main()
