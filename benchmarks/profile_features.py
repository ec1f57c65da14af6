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

from pathlib import Path

import numpy as np
import scipy.sparse as sp

from sketchrec import presets
from sketchrec.data.splits import history_future_split
from sketchrec.eval.profiles import fit_predict, genre_shares, labels_of, load, scores
from sketchrec.eval.report import benchmark_parser, host_line, markdown_table, mean_std, timed, write_page

OUT = Path(__file__).resolve().parents[1] / "docs" / "benchmarks"


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
        emde, fit_s = timed(lambda: presets.make("emde-profile", seed=seed, threads=args.threads, progress=False)
                            .add_embeddings("genres", genres).fit(h_train))
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
    write_page(OUT / "profile_features.md", "\n".join(lines) + "\n",
               data={"results": results, "attribution": attributions}, json_default=None, echo=True)

if __name__ == "__main__":
    main()
