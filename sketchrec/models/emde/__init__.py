"""EMDE: the sketch-to-sketch recommender (Dąbrowski et al., ICONIP 2021).

Items are coded by DLSH over item embeddings (one coder per embedding
source); a history becomes one density sketch per *input modality*; a
feed-forward network maps the concatenated input sketches to a predicted
output sketch (per-depth softmax over the buckets), trained with
cross-entropy against the sketch of what comes next; items are scored by a
readout of the predicted sketch at each item's buckets (`readout`: "bayes" by
default, the geometric mean over depth, or "min", the count-min estimate).

Modalities are strings ``"view:source"``:

- source — where item vectors come from: ``cleora:<steps>`` (Cleora
  propagation over the training rows' row-item graph, ``steps`` random-walk
  steps; built in `fit`) or the name of an `Embeddings` / array given to
  `add_embeddings` (categories, text, any other item modality);
- view — which clicks of a history the sketch counts: ``all`` (recency
  decayed with `decay` when set), ``last`` (the last click only), ``liked`` /
  ``disliked`` (click weight >= / < `like_threshold`, e.g. ratings).

Two training targets: ``"next"`` (session-based: every prefix of a training
session -> its next item) and ``"holdout"`` (top-k: each epoch every user's
items are split at random into an input part and a target part, the
thesis's 80/20 setting, re-drawn every epoch).

The first layer is an `EmbeddingBag` over the sparse input sketch (a history
touches few buckets), so its cost follows the history length, not the
sketch size.

Modules: estimator.py (the `EMDE` recommender), modalities.py (views and input sketches),
codes.py (item vectors and their DLSH codes), network.py (`SketchNet`), readout.py (item scores
from a predicted sketch), explain.py (occlusion and gradient x input).
"""

from sketchrec.models.emde.codes import row_item_embeddings, source_codes
from sketchrec.models.emde.estimator import EMDE
from sketchrec.models.emde.modalities import VIEWS, Modality, history_view, input_sketches, l2_per_depth
from sketchrec.models.emde.network import SketchNet

# the former private names (tests and scripts import them from here)
_l2_per_depth = l2_per_depth
_view = history_view

__all__ = ["EMDE", "VIEWS", "Modality", "SketchNet", "history_view", "input_sketches", "l2_per_depth",
           "row_item_embeddings", "source_codes"]
