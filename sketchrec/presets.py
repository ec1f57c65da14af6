"""Validated settings as named presets: what the benchmarks chose on validation, by name.

    from sketchrec import presets
    presets.names()                        # ['emde-profile', 'emde-session', ...]
    params = presets.get("emde-session")   # a fresh dict of the settings
    model = presets.make("vsknn-session", threads=2)

Each preset says which model it configures, its settings, and where they were chosen. Settings
that are chosen per dataset (EMDE's epoch count: `eval.protocols.select_epochs_then_refit`)
are not in the preset. The CLI and the benchmark scripts read their defaults from here, so a
newcomer reproduces a table with the same settings by name.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

__all__ = ["Preset", "describe", "get", "make", "names"]


@dataclass(frozen=True)
class Preset:
    """model: a key of `sketchrec.models.MODELS`; params: its constructor settings; note: where
    and how they were chosen."""

    model: str
    params: dict = field(default_factory=dict)
    note: str = ""


_PRESETS: dict[str, Preset] = {
    # key order matters to the pages that print the settings (docs/benchmarks/emde_sessions.md)
    "emde-session": Preset("emde", dict(
        inputs=("all:cleora:1", "all:cleora:3", "last:cleora:1"), outputs=("cleora:1", "cleora:3"),
        n_sketches=10, n_bits=7, hidden=1024, n_blocks=1, decay=0.9, lr=0.004, lr_decay=0.5,
        batch_size=512, readout="bayes", prior=1.0),
        "next-item on session benchmarks: the session decayed and its last item, two Cleora "
        "sources; chosen on Diginetica's validation split (docs/benchmarks/emde_sessions.md, "
        "emde_ablation_yoochoose1-64.md). Epochs: chosen per dataset on validation, at most 5."),
    "emde-topk": Preset("emde", dict(
        target="holdout", n_sketches=10, n_bits=7, hidden=512, n_blocks=0, batch_norm=False,
        batch_size=64, lr=3e-3, lr_decay=0.99, weight_decay=1e-4, decay=None),
        "top-k on user histories (MovieLens), common to every modality variant; chosen on "
        "ML-100K validation among hidden 256-2048, 0-1 residual blocks, dropout, weight decay "
        "and learning rates (docs/benchmarks/emde_topk.md). Inputs, outputs, epochs and the "
        "readout prior are per variant and dataset."),
    "emde-profile": Preset("emde", dict(
        inputs=("all:cleora:1", "all:cleora:3", "all:genres"), outputs=("cleora:1", "cleora:3"),
        target="holdout", n_sketches=10, n_bits=7, hidden=512, n_blocks=0, batch_norm=False,
        batch_size=64, lr=3e-3, lr_decay=0.99, weight_decay=1e-4, decay=None, epochs=20),
        "behavioural profiles on MovieLens: emde-topk with a genre-indicator modality "
        "(add_embeddings('genres', ...)) and 20 epochs (docs/benchmarks/profile_features.md, "
        "emde_explain.md)."),
    "vsknn-session": Preset("vsknn", dict(neighbours=100, sample_size=500, decay="div"),
                            "V-SKNN chosen on validation (MRR@20) on Diginetica, YooChoose 1/64 and "
                            "NowPlaying (docs/benchmarks/session_baselines.md; RetailRocket chose "
                            "decay 'linear')."),
    "srgnn-ours": Preset("srgnn", dict(epochs=12, patience=2, lr_decay_every=3),
                         "the settings of every SR-GNN / TAGNN table before the thesis recipe: "
                         "early stopping on validation MRR@20 (docs/benchmarks/srgnn_augmentation.md)."),
    "srgnn-thesis": Preset("srgnn", dict(
        lr=1e-3, init_std=0.1, batch_size=100, l2=1e-5, lr_decay_every=2, lr_decay=0.1, step=2,
        stop_on="loss", patience=5, epochs=20),
        "the MSc thesis's appendix A.2 (docs/srgnn_thesis_recipe.md); augmented models use l2 1e-6 "
        "and patience 4."),
}


def names() -> list[str]:
    """Every preset's name, sorted."""
    return sorted(_PRESETS)


def describe(name: str) -> Preset:
    """The preset itself (model, settings, where they were chosen)."""
    try:
        return _PRESETS[name]
    except KeyError:
        raise KeyError(f"unknown preset {name!r}; known: {', '.join(names())}") from None


def get(name: str) -> dict:
    """A fresh copy of the preset's settings (changing it does not change the preset)."""
    return copy.deepcopy(describe(name).params)


def make(name: str, **overrides):
    """An unfitted model of the preset's class with its settings, `overrides` applied on top."""
    from sketchrec.models import MODELS
    preset = describe(name)
    return MODELS[preset.model](**{**get(name), **overrides})
