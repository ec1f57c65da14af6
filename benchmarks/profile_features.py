"""Behavioural profiles as features for a downstream model (issue 9).

Task: which genres will a MovieLens user rate next? Each user's ratings in time order are cut
at 70%: the first part is the known history, and the label set is the genres of the next 10
rated movies (multi-label, 18 genres + unknown). Users are split 70 / 30 (seeded) into training
and test users; a one-vs-rest logistic regression (C chosen on a validation split of the training
users) predicts the labels from:

- item counts: the binary user x movie matrix of the history (1,682 sparse columns);
- genre counts: the history's genre shares (19 columns);
- EMDE profile: the EMDE input sketches of the history (`EMDE.profile`, modalities all:cleora:1,
  all:cleora:3, all:genres: the `emde-profile` preset; EMDE trained as in emde_topk.py, self-supervised — held-out items of a
  history as targets — on the training users' histories only);
- EMDE profile + genre counts.

Metrics on the test users: macro average precision (mAP over genres), micro ROC-AUC, and the
per-modality attribution of the EMDE model's predictions: the mean |coefficient x feature| mass
of each input modality. Mean ± std over --seeds.

    python -m benchmarks.profile_features          # -> docs/benchmarks/profile_features.md
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from sketchrec import presets
from sketchrec.data import registry
from sketchrec.data.sessions import Sessions
from sketchrec.data.splits import history_future_split
from sketchrec.eval.report import benchmark_parser, host_line, markdown_table, mean_std, write_page

OUT = Path(__file__).resolve().parents[1] / "docs" / "benchmarks"


def load(name: str):
    inter = registry.load(name)
    rows = inter.to_sessions()                                  # one row per user, time order
    names = inter.items.column("genres").to_pylist()
    vocab = sorted({g for gs in names for g in (gs or [])})
    index = {g: i for i, g in enumerate(vocab)}
    genres = np.zeros((inter.n_items, len(vocab)), np.float32)
    r = np.repeat(np.arange(len(names)), [len(g or []) for g in names])
    genres[r, [index[g] for gs in names for g in (gs or [])]] = 1.0
    return rows, genres, vocab


def labels_of(future: Sessions, genres: np.ndarray) -> np.ndarray:
    y = np.zeros((len(future), genres.shape[1]), dtype=np.int64)
    rows = future.row_of_click()
    np.maximum.at(y, rows, genres[future.items].astype(np.int64))
    return y


def genre_shares(history: Sessions, genres: np.ndarray) -> np.ndarray:
    g = np.zeros((len(history), genres.shape[1]), np.float32)
    np.add.at(g, history.row_of_click(), genres[history.items])
    return g / np.maximum(history.lengths[:, None], 1)


def fit_predict(x_train, y_train, x_test, seed):
    """One-vs-rest logistic regression; C from {0.1, 1, 10} by macro AP on a 25% validation split
    of the training users, then refitted on all of them."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier
    active = y_train.std(0) > 0
    y_train = y_train[:, active]
    valid = np.random.default_rng(seed).random(x_train.shape[0]) < 0.25

    def model(c):
        return OneVsRestClassifier(LogisticRegression(C=c, max_iter=1000, solver="liblinear"))
    best = max((scores(y_train[valid], model(c).fit(x_train[~valid], y_train[~valid]).predict_proba(x_train[valid]))
                ["mAP"], c) for c in (0.1, 1.0, 10.0))
    est = model(best[1]).fit(x_train, y_train)
    proba = np.zeros((x_test.shape[0], len(active)))
    proba[:, active] = est.predict_proba(x_test)
    return proba, best[1], est, active


def scores(y, proba):
    from sklearn.metrics import average_precision_score, roc_auc_score
    cols = (y.sum(0) > 0) & (y.sum(0) < len(y))
    return {"mAP": float(average_precision_score(y[:, cols], proba[:, cols], average="macro")),
            "micro_AUC": float(roc_auc_score(y[:, cols], proba[:, cols], average="micro"))}


def main() -> None:
    args = benchmark_parser(__doc__, dataset="movielens-100k", seeds=[0, 1, 2], threads=2).parse_args()
    rows, genres, vocab = load(args.dataset)
    history, future = history_future_split(rows)
    y = labels_of(future, genres)
    results = {k: [] for k in ("item counts", "genre counts", "EMDE profile", "EMDE profile + genre counts")}
    attributions = []
    for seed in args.seeds:
        rng = np.random.default_rng(seed)
        test = rng.random(len(history)) < 0.3
        train_rows, test_rows = np.flatnonzero(~test), np.flatnonzero(test)
        h_train, h_test = history.take(train_rows), history.take(test_rows)
        items_x = history.to_csr(binary=True)
        genre_x = genre_shares(history, genres)
        t0 = time.perf_counter()
        emde = presets.make("emde-profile", seed=seed, threads=args.threads, progress=False)
        emde.add_embeddings("genres", genres)
        emde.fit(h_train)
        fit_s = time.perf_counter() - t0
        prof_train, prof_test = emde.profile(h_train), emde.profile(h_test)
        feats = {"item counts": (items_x[train_rows], items_x[test_rows]),
                 "genre counts": (genre_x[train_rows], genre_x[test_rows]),
                 "EMDE profile": (prof_train, prof_test),
                 "EMDE profile + genre counts": (sp.hstack([prof_train, sp.csr_matrix(genre_x[train_rows])]).tocsr(),
                                                 sp.hstack([prof_test, sp.csr_matrix(genre_x[test_rows])]).tocsr())}
        for name, (a, b) in feats.items():
            proba, c, est, active = fit_predict(a, y[train_rows], b, seed)
            results[name].append({**scores(y[test_rows], proba), "C": c, "emde_fit_s": fit_s})
            if name == "EMDE profile":
                coef = np.vstack([e.coef_[0] for e in est.estimators_])              # (labels, features)
                contrib = np.abs(prof_test.toarray()[:, None, :] * coef[None, :, :]).sum((0, 1))
                block = len(contrib) // len(emde.inputs)
                mass = np.array([contrib[i * block:(i + 1) * block].sum() for i in range(len(emde.inputs))])
                attributions.append(dict(zip(emde.inputs, (mass / mass.sum()).tolist())))
    lines = ["# Behavioural profiles as downstream features", "",
             f"{host_line()}. Command: `python benchmarks/profile_features.py --seeds {' '.join(map(str, args.seeds))}`.", "",
             f"{args.dataset}: {len(history):,} users with at least 10 ratings; history = first 70% of a user's "
             f"ratings in time order, labels = the {len(vocab)} genres of the next 10 rated movies "
             f"(label rate {y.mean():.2f}); 30% of users (seeded) tested. One-vs-rest logistic regression, C by "
             "macro AP on a validation split of the training users. Percentages, mean ± std over seeds.", "",
             *markdown_table(["features", "mAP (macro over genres)", "micro ROC-AUC"],
                             [[name, mean_std([r["mAP"] for r in rs]), mean_std([r["micro_AUC"] for r in rs])]
                              for name, rs in results.items()]),
             "", "Per-modality attribution of the EMDE-profile model (share of mean |coefficient x feature| over "
             "test users and genres):", "",
             *markdown_table(["modality", "share"], [[spec, f"{np.mean([100 * a[spec] for a in attributions]):.1f}%"]
                                                     for spec in attributions[0]])]
    print("\n".join(lines))
    write_page(OUT / "profile_features.md", "\n".join(lines) + "\n",
               data={"results": results, "attribution": attributions}, json_default=None, quiet=True)

if __name__ == "__main__":
    main()
