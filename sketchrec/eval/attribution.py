"""Checking per-modality attributions of a recommender (benchmarks/emde_explain.py): scores with a
user's history masked, the rank of an item, the deletion test (occlude the modality the attribution
names and see whether the recommendation moves), the summary of a model's explanations
(`attribution_summary`), and a figure of the summary.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def unseen_scores(model, histories, without=()):
    """`model.score(histories, without=...)` with each row's own history items at -inf."""
    scores = model.score(histories, without=without)
    rows = np.repeat(np.arange(len(histories)), histories.lengths)
    scores[rows, histories.items] = -np.inf
    return scores


def rank_of(scores, items):
    """1-based rank of items[r] in row r (pessimistic ties)."""
    own = scores[np.arange(len(items)), items][:, None]
    return (scores >= own).sum(1)


def plot_attribution(summary: dict, path: Path) -> None:
    """Three panels: attribution mass per modality, the modality that drives the top-1 (share of users),
    and the deletion test (`deletion_test` per arm: top-1 changes, falls out of the top-10)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    specs = list(summary["share"])
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    axes[0].bar(specs, [100 * summary["share"][s] for s in specs], color="tab:blue")
    axes[0].set_ylabel("% of |occlusion drop|")
    axes[0].set_title("attribution mass per modality")
    axes[1].bar(specs, [100 * summary["dominant"][s] for s in specs], color="tab:green")
    axes[1].set_ylabel("% of test users")
    axes[1].set_title("modality that drives the top-1")
    arms = ["top-attributed", "random", "least-attributed"]
    x = np.arange(len(arms))
    axes[2].bar(x - 0.2, [100 * summary["deletion"][a]["changed"] for a in arms], 0.4, label="top-1 changes %")
    axes[2].bar(x + 0.2, [100 * summary["deletion"][a]["out_of_top10"] for a in arms], 0.4,
                label="falls out of top-10 %")
    axes[2].set_xticks(x, arms)
    axes[2].set_title("deletion test: occlude one modality")
    axes[2].legend(fontsize=8)
    for ax in axes[:2]:
        ax.tick_params(axis="x", rotation=15)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def deletion_test(occluded: dict, specs: list, pick: np.ndarray, top1: np.ndarray) -> dict:
    """Occlude one modality per user (`pick[r]`: an index into `specs`; `occluded[spec]`: the scores
    without that modality) and re-rank: the share of users whose top-1 changes, and the explained
    item's (`top1`) median new rank and share out of the top-10."""
    new_top1 = np.empty(len(top1), np.int64)
    new_rank = np.empty(len(top1), np.int64)
    for m, spec in enumerate(specs):
        sel = pick == m
        if sel.any():
            sc = occluded[spec][sel]
            new_top1[sel] = sc.argmax(1)
            new_rank[sel] = rank_of(sc, top1[sel])
    return {"changed": float(np.mean(new_top1 != top1)), "median_rank": float(np.median(new_rank)),
            "out_of_top10": float(np.mean(new_rank > 10))}


def attribution_summary(model, histories, explained: list[dict], top1: np.ndarray, genres: np.ndarray, rng):
    """Summary of `model.explain`'s per-modality attributions (`explained`, one per row of `histories`,
    explaining its top-1 unseen item `top1`), over the model's input specs: each modality's share of the
    attribution mass, how often it drives the top-1, its mean contribution; the deletion test of the
    top-, least-attributed and a random modality (drawn from `rng`); and the genre agreement (the item
    multi-hot `genres`) of the top-1 with the history for users the "all:genres" modality drives most
    against the others. Returns (that summary, the histories' genre shares)."""
    from sketchrec.eval.profiles import genre_shares
    specs = list(model.inputs)
    contrib = np.array([[e["modalities"][s] for s in specs] for e in explained])        # (users, modalities)
    mass = np.abs(contrib)
    share = mass.sum(0) / mass.sum()
    order = np.argsort(-contrib, axis=1)                           # most -> least attributed, per user
    dominant = np.bincount(order[:, 0], minlength=len(specs)) / len(contrib)

    occluded = {s: unseen_scores(model, histories, without=[s]) for s in specs}
    arms = {"top-attributed": order[:, 0], "least-attributed": order[:, -1],
            "random": rng.integers(0, len(specs), len(histories))}
    deletion = {arm: deletion_test(occluded, specs, pick, top1) for arm, pick in arms.items()}
    # meaning check: genre agreement of the recommended movie with the history
    hist_genres = genre_shares(histories, genres)                                # (users, genres) shares
    movie_genres = genres[top1]
    agreement = (hist_genres * movie_genres).sum(1) / np.maximum(movie_genres.sum(1), 1)
    g = specs.index("all:genres")
    by_genre = order[:, 0] == g
    return {"share": dict(zip(specs, share.tolist())),
            "dominant": dict(zip(specs, dominant.tolist())),
            "mean_contribution": dict(zip(specs, contrib.mean(0).tolist())),
            "deletion": deletion,
            "genre_agreement": {"genres-driven": float(agreement[by_genre].mean()) if by_genre.any() else None,
                                "others": float(agreement[~by_genre].mean()) if (~by_genre).any() else None,
                                "genres-driven users": int(by_genre.sum())}}, hist_genres
