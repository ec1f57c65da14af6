"""EMDE's input modalities: which clicks of a history a sketch counts, and the sparse input
sketches the network reads.

A modality is ``"view:source"``: the source names the item codes (``cleora:<steps>`` or an
added embedding), the view picks the clicks — ``all`` (recency decayed), ``last``, ``liked`` /
``disliked`` (click weight >= / < the like threshold).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch

from sketchrec.data.sessions import Sessions
from sketchrec.sketch.sketches import sketch_histories

VIEWS = ("all", "last", "liked", "disliked")


@dataclass(frozen=True)
class Modality:
    view: str
    source: str

    @classmethod
    def parse(cls, spec: str) -> "Modality":
        view, sep, source = spec.partition(":")
        if not sep or view not in VIEWS:
            raise ValueError(f"modality {spec!r} must be 'view:source' with view in {VIEWS}, "
                             f"e.g. 'all:cleora:1'")
        if source.startswith("cleora"):
            _, _, steps = source.partition(":")
            if not steps.isdigit():
                raise ValueError(f"modality {spec!r}: cleora source needs a step count, e.g. 'cleora:2'")
        return cls(view, source)


def history_view(histories: Sessions, view: str, like_threshold: float) -> Sessions:
    """The clicks of `histories` that modality view `view` counts."""
    if view == "all":
        return histories
    if view == "last":
        return histories.tail(1)
    if histories.weights is None:
        raise ValueError(f"view {view!r} needs click weights (e.g. ratings) in the histories")
    liked = histories.weights >= like_threshold
    return histories.filter_clicks(liked if view == "liked" else ~liked)


def l2_per_depth(m: sp.csr_matrix, width: int) -> None:
    """In place: every (row, depth) segment of a sketch CSR gets unit L2 norm."""
    rows = np.repeat(np.arange(m.shape[0], dtype=np.int64), np.diff(m.indptr))
    n_depth = m.shape[1] // width
    key = rows * n_depth + m.indices // width
    norms = np.sqrt(np.bincount(key, weights=m.data.astype(np.float64) ** 2, minlength=m.shape[0] * n_depth))
    m.data /= np.maximum(norms[key], 1e-12).astype(np.float32)


def input_sketches(histories: Sessions, inputs: tuple[str, ...], codes: dict[str, np.ndarray], width: int, *,
                   decay: float | None, like_threshold: float, l2_input: bool, without=()):
    """The concatenated sparse input sketches of `histories` as EmbeddingBag arguments
    (indices int64, offsets int64 (B + 1,), weights float32), one block of depth x width columns
    per input modality. Modalities named in `without` are occluded: their weights are zero."""
    unknown = set(without) - set(inputs)
    if unknown:
        raise ValueError(f"unknown input modalities {sorted(unknown)}; the model has {list(inputs)}")
    parts = []
    for spec in inputs:
        m = Modality.parse(spec)
        s = sketch_histories(history_view(histories, m.view, like_threshold), codes[m.source], width,
                             sparse=True, decay=decay if m.view == "all" else None)
        if l2_input:
            l2_per_depth(s, width)
        if spec in without:
            s.data[:] = 0
        parts.append(s)
    x = sp.hstack(parts, format="csr") if len(parts) > 1 else parts[0]
    return (torch.from_numpy(x.indices.astype(np.int64)), torch.from_numpy(x.indptr.astype(np.int64)),
            torch.from_numpy(x.data.astype(np.float32)))
