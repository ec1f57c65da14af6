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
"""

from __future__ import annotations

import warnings
import logging
import os
import time
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn
from tqdm.auto import tqdm

from sketchrec.data.sessions import Sessions, expand_prefixes, merge_rows, random_holdout
from sketchrec.models._checkpoint import fingerprint, load_checkpoint, save_checkpoint
from sketchrec.models.base import Recommender
from sketchrec.precision import use_bf16
from sketchrec.sketch.dlsh import DLSHCoder
from sketchrec.sketch.sketches import Readout, sketch_histories

log = logging.getLogger(__name__)

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


# -- item vectors from the training rows ---------------------------------------------

def row_item_embeddings(train: Sessions, steps: int, dim: int = 256, seed: int = 0,
                        clicks: np.ndarray | None = None) -> np.ndarray:
    """(n_items, dim) Cleora vectors of items over the bipartite row-item graph of `train`.

    One step averages a node's neighbours (rows for an item, items for a row)
    and L2-normalises. Items absent from the graph get zero vectors. Zero steps
    give Cleora's random start vectors: codes that only identify items (a
    count-min sketch of item identity), so the network can learn item-level
    transitions that similarity-based codes blur.
    clicks: optional (nnz,) bool mask of the clicks that make edges.
    """
    from sketchrec.graph.build import Graph
    from sketchrec.graph.cleora import Cleora, initial_vectors
    if steps == 0:
        return initial_vectors(train.n_items, dim, seed)
    rows, items = train.row_of_click(), train.items
    if clicks is not None:
        rows, items = rows[clicks], items[clicks]
    n_rows = len(train)
    graph = Graph.from_edges(rows, n_rows + items.astype(np.int64), n_nodes=n_rows + train.n_items)
    vectors = Cleora(dim=dim, iterations=steps, seed=seed, progress=False).fit(graph).vectors_
    return np.ascontiguousarray(vectors[n_rows:])


# -- the network -------------------------------------------------------------------------

class SketchNet(nn.Module):
    """Sparse input sketch -> (depth, width) log-probabilities.

    EmbeddingBag (= a linear layer on the sparse input) -> [BN] -> LeakyReLU,
    then `n_blocks` residual blocks h + LeakyReLU(BN(Linear(h))), then a linear
    layer to depth x width logits, log-softmax over each depth row.
    """

    def __init__(self, n_inputs: int, hidden: int, depth: int, width: int, n_blocks: int = 1,
                 batch_norm: bool = True, dropout: float = 0.0):
        super().__init__()
        self.depth, self.width = depth, width
        self.input = nn.EmbeddingBag(n_inputs, hidden, mode="sum", include_last_offset=True)
        nn.init.normal_(self.input.weight, std=1.0 / np.sqrt(n_inputs / 8))
        self.input_bias = nn.Parameter(torch.zeros(hidden))
        norm = (lambda: nn.BatchNorm1d(hidden)) if batch_norm else nn.Identity
        self.input_norm = norm()
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.Linear(hidden, hidden), norm(), nn.LeakyReLU(), nn.Dropout(dropout))
            for _ in range(n_blocks))
        self.act = nn.LeakyReLU()
        self.output = nn.Linear(hidden, depth * width)

    def forward(self, indices, offsets, weights):
        h = self.input(indices, offsets, per_sample_weights=weights) + self.input_bias
        h = self.act(self.input_norm(h))
        for block in self.blocks:
            h = h + block(h)
        logits = self.output(h).view(-1, self.depth, self.width)
        return torch.log_softmax(logits.float(), dim=-1)


# -- the recommender ------------------------------------------------------------------

class EMDE(Recommender):
    """The defaults are the session-based setting chosen on Diginetica's validation split
    (`benchmarks/emde_sessions.py`); top-k settings are in `benchmarks/emde_topk.py`.

    Parameters
    ----------
    inputs : input modalities ("view:source", see the module docstring).
    outputs : embedding sources whose codes make the output sketch (depths concatenated).
    n_sketches, n_bits : DLSH depth N and bits K (width 2^K) of every source.
    bias : DLSH threshold rule, "quantile" (density-aware) or "median".
    decay : recency decay γ of the "all" view (weight γ^(steps back)); None = none.
    like_threshold : click weight splitting "liked" (>=) from "disliked" (<).
    cleora_dim : dimension of the Cleora item vectors.
    target : "next" (session prefix -> next item) or "holdout" (user items -> held-out items).
    holdout_share : target share of a user's items per epoch (target="holdout").
    target_view : "all" or "liked": which clicks are held out as targets (target="holdout");
        with "liked", clicks below `like_threshold` always stay in the input (as at test time,
        when a user's disliked items are all known and only liked items are to be found).
    reconstruct : target="holdout" only: the target sketch is the whole row (input and held-out
        items, as a denoising autoencoder's), not just the held-out part.
    hidden, n_blocks, batch_norm, dropout : network shape.
    l2_input : L2-normalise every depth row of the input sketches.
    epochs, batch_size, lr, weight_decay, lr_decay : Adam training; lr x lr_decay per epoch.
    max_prefix : only the last `max_prefix` clicks of a prefix are sketched (target="next").
    readout : how item i's score is read from the predicted sketch p (b_ij: i's bucket at depth j).
        "bayes" (default) — Σ_j [log p_j(b_ij) - log m_j(b_ij)] + prior · log π_i, with π the
        items' training popularity (add-one smoothed) and m_j(b) the popularity mass of bucket
        b at depth j: each depth's predicted mass, divided by what popularity alone predicts,
        is evidence for the item (naive-Bayes combination); "geometric" — the geometric mean
        over depth, mean_j log p_j(b_ij); "min" — min_j p_j(b_ij), the count-min sketch's
        estimate, as the EMDE papers read scores ("the same as CMS"). "mean" is the old name
        of "geometric" (accepted, deprecated).
    prior : weight of log π in the "bayes" readout (0 = likelihood ratio only).
    bf16 : train with bfloat16 autocast (log-softmax and loss stay float32; scoring is
        float32): "auto" (default) where the CPU computes bf16 natively (AVX-512 BF16 or AMX),
        where it is about 1.6x faster, float32 elsewhere, where emulated bf16 is many times
        slower (`sketchrec.precision`); True / False force it.
    seed : seeds DLSH, Cleora, initialisation and batch order.
    threads : torch threads (default: all cores).
    """

    _param_choices = {"bias": ("quantile", "median"), "target": ("next", "holdout"), "target_view": ("all", "liked"),
                      "readout": ("bayes", "geometric", "min", "mean"), "bf16": (True, False, "auto")}
    _param_bounds = {"n_sketches": (1, None), "n_bits": (1, 30), "decay": (0, 1), "cleora_dim": (1, None),
                     "holdout_share": (0, 1), "hidden": (1, None), "n_blocks": (0, None), "dropout": (0, 1),
                     "epochs": (0, None), "batch_size": (1, None), "lr": (0, None), "weight_decay": (0, None),
                     "lr_decay": (0, None), "max_prefix": (0, None), "prior": (0, None), "seed": (0, None),
                     "threads": (1, None)}

    def __init__(self, inputs=("all:cleora:1", "all:cleora:3", "last:cleora:1"),
                 outputs=("cleora:1", "cleora:3"), n_sketches: int = 10, n_bits: int = 7, bias: str = "quantile",
                 decay: float | None = 0.9, like_threshold: float = 4.0, cleora_dim: int = 256,
                 target: str = "next", holdout_share: float = 0.2, target_view: str = "all",
                 reconstruct: bool = False, hidden: int = 1024, n_blocks: int = 1, batch_norm: bool = True,
                 dropout: float = 0.0, l2_input: bool = True, epochs: int = 3, batch_size: int = 512,
                 lr: float = 4e-3, weight_decay: float = 0.0, lr_decay: float = 0.5, max_prefix: int = 50,
                 readout: str = "bayes", prior: float = 1.0, bf16: bool | str = "auto", seed: int = 0,
                 threads: int | None = None, progress: bool = True):
        self.inputs = tuple(inputs)
        self.outputs = tuple(outputs)
        self.n_sketches = n_sketches
        self.n_bits = n_bits
        self.bias = bias
        self.decay = decay
        self.like_threshold = like_threshold
        self.cleora_dim = cleora_dim
        self.target = target
        self.holdout_share = holdout_share
        self.target_view = target_view
        self.reconstruct = reconstruct
        self.hidden = hidden
        self.n_blocks = n_blocks
        self.batch_norm = batch_norm
        self.dropout = dropout
        self.l2_input = l2_input
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.lr_decay = lr_decay
        self.max_prefix = max_prefix
        self.readout = readout
        self.prior = prior
        self.bf16 = bf16
        self.seed = seed
        self.threads = threads
        self.progress = progress
        self._embeddings: dict[str, np.ndarray] = {}

    # -- configuration -------------------------------------------------------------------
    @property
    def width(self) -> int:
        return 1 << self.n_bits

    def add_embeddings(self, name: str, vectors) -> "EMDE":
        """Make item vectors available as source `name` (an `Embeddings` in internal item order
        or an (n_items, d) array; rows of items without a vector may be zero)."""
        if name.startswith("cleora"):
            raise ValueError("source names starting with 'cleora' are reserved")
        vectors = getattr(vectors, "vectors", vectors)
        self._embeddings[name] = np.asarray(vectors, dtype=np.float32)
        return self

    def _modalities(self) -> list[Modality]:
        mods = [Modality.parse(s) for s in self.inputs]
        if not mods or not self.outputs:
            raise ValueError("EMDE needs at least one input modality and one output source")
        if self.target not in ("next", "holdout"):
            raise ValueError(f"target must be 'next' or 'holdout', got {self.target!r}")
        if self.target_view not in ("all", "liked"):
            raise ValueError(f"target_view must be 'all' or 'liked', got {self.target_view!r}")
        return mods

    # -- fitting ---------------------------------------------------------------------------
    def _fit_codes(self, train: Sessions) -> None:
        """DLSH codes of every source used by an input or output modality."""
        sources = list(dict.fromkeys([m.source for m in self._modalities()] + list(self.outputs)))
        self.codes_ = {}
        for i, source in enumerate(sources):
            if source.startswith("cleora"):
                vectors = row_item_embeddings(train, int(source.split(":")[1]), self.cleora_dim,
                                              seed=self.seed)
            elif source in self._embeddings:
                vectors = self._embeddings[source]
                if len(vectors) < train.n_items:
                    raise ValueError(f"source {source!r} has {len(vectors)} item vectors for "
                                     f"{train.n_items} items")
                vectors = vectors[:train.n_items]
            else:
                raise ValueError(f"unknown source {source!r}: use 'cleora:<steps>' or call "
                                 f"add_embeddings({source!r}, vectors) before fit")
            coder = DLSHCoder(self.n_sketches, self.n_bits, self.bias, seed=self.seed * 7919 + i)
            self.codes_[source] = coder.fit_encode(vectors).astype(np.int16 if self.n_bits < 15
                                                                   else np.int32)

    def _output_codes(self) -> np.ndarray:
        return np.concatenate([self.codes_[s] for s in self.outputs], axis=1)

    def fit(self, train: Sessions, validation=None, callback=None, checkpoint=None) -> "EMDE":
        """Learn codes and the network from training rows.

        validation : optional (prefixes Sessions, targets array) for target="next", or
            (inputs Sessions, targets Sessions[, excluded Sessions]) for target="holdout": evaluated after every
            epoch into `history_` (MRR@20 / NDCG@20); the best epoch's weights are kept.
        callback : optional callable(epoch, model, history_row) after every epoch, before its checkpoint.
        checkpoint : optional path of an .npz written atomically after every epoch (weights,
            optimiser, random states, history). If it exists and was written for the same
            settings and training rows, training resumes after its last epoch: a killed run
            loses at most the epoch in progress.

        A fit that fails (bad input, interrupt) leaves a fitted model as it was.
        """
        before = dict(self.__dict__)
        try:
            return self._fit(train, validation, callback, checkpoint)
        except BaseException:
            self.__dict__.clear()
            self.__dict__.update(before)
            raise

    def _fit(self, train: Sessions, validation, callback, checkpoint) -> "EMDE":
        mods = self._modalities()
        if train.weights is None and (self.target_view == "liked"
                                      or any(m.view in ("liked", "disliked") for m in mods)):
            raise ValueError("views 'liked' / 'disliked' need click weights (e.g. ratings) in the "
                             "training rows")
        torch.manual_seed(self.seed)
        torch.set_num_threads(self.threads or os.cpu_count() or 1)
        self.bf16_ = use_bf16(self.bf16, "EMDE training")
        rng = np.random.default_rng(self.seed)
        t0 = time.perf_counter()
        self.n_items_ = train.n_items
        self.item_counts_ = train.item_counts().astype(np.float32)
        self._fit_codes(train)
        self.n_inputs_ = len(mods) * self.n_sketches * self.width
        depth_out = len(self.outputs) * self.n_sketches
        self.int8_ = False
        self.net_ = SketchNet(self.n_inputs_, self.hidden, depth_out, self.width, self.n_blocks,
                              self.batch_norm, self.dropout)
        optimiser = torch.optim.Adam(self.net_.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        scheduler = torch.optim.lr_scheduler.ExponentialLR(optimiser, gamma=self.lr_decay)
        out_codes_np = self._output_codes()
        out_codes = torch.from_numpy(out_codes_np.astype(np.int64))
        if self.target == "next":
            prefixes, targets = expand_prefixes(train)
            if self.max_prefix:
                prefixes = prefixes.tail(self.max_prefix)
            n_examples = len(targets)
        else:
            n_examples = len(train)
        self.codes_setup_s_ = time.perf_counter() - t0
        self.history_, best, best_state = [], -np.inf, None
        first_epoch = 0
        rows_id = fingerprint(train)
        if checkpoint is not None and os.path.exists(checkpoint):
            first_epoch, self.history_, best, best_state, extra = load_checkpoint(
                checkpoint, params=self.get_params(), fingerprint=rows_id, net=self.net_,
                optimiser=optimiser, scheduler=scheduler, rng=rng)
            if extra.get("best_epoch") is not None:
                self.best_epoch_ = extra["best_epoch"]
            log.info("EMDE: resumed from %s after epoch %d", checkpoint, first_epoch)
        for epoch in range(first_epoch, self.epochs):
            self.net_.train()
            t_epoch, total, seen = time.perf_counter(), 0.0, 0
            order = rng.permutation(n_examples)
            if self.target == "holdout":
                inputs_all, targets_all = self._holdout_split(train, rng)
                if self.reconstruct:
                    targets_all = merge_rows([inputs_all, targets_all])
                    if self.target_view == "liked":
                        targets_all = targets_all.filter_clicks(targets_all.weights >= self.like_threshold)
            bar = tqdm(range(0, n_examples, self.batch_size), desc=f"emde epoch {epoch + 1}",
                       unit="batch", leave=False, disable=not self.progress)
            for start in bar:
                rows = order[start:start + self.batch_size]
                if len(rows) < 2:      # batch norm needs two rows
                    continue
                if self.target == "next":
                    batch_in = prefixes.take(rows)
                    t = out_codes[torch.from_numpy(targets[rows].astype(np.int64))]
                else:
                    batch_in = inputs_all.take(rows)
                    t = torch.from_numpy(sketch_histories(targets_all.take(rows), out_codes_np, self.width))
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16_):
                    log_p = self.net_(*self._encode(batch_in))
                if self.target == "next":
                    loss = -log_p.gather(2, t.unsqueeze(2)).mean()
                else:
                    loss = -(t * log_p).sum(2).mean()
                optimiser.zero_grad(set_to_none=True)
                loss.backward()
                optimiser.step()
                total += loss.item() * len(rows)
                seen += len(rows)
                if self.progress:
                    bar.set_postfix(loss=f"{total / seen:.4f}", refresh=False)
            scheduler.step()
            row = {"epoch": epoch + 1, "loss": total / max(seen, 1),
                   "seconds": time.perf_counter() - t_epoch}
            if validation is not None:
                row.update(self._validate(validation))
                key = "MRR@20" if self.target == "next" else "NDCG@20"
                if row[key] > best:
                    best = row[key]
                    best_state = {k: v.detach().clone() for k, v in self.net_.state_dict().items()}
                    self.best_epoch_ = epoch + 1
            if callback is not None:            # before the checkpoint, so what it adds to `row` is kept
                callback(epoch + 1, self, row)
            self.history_.append(row)
            log.info("EMDE epoch %s", row)
            if checkpoint is not None:
                save_checkpoint(checkpoint, params=self.get_params(), fingerprint=rows_id, epoch=epoch + 1,
                                net=self.net_, optimiser=optimiser, scheduler=scheduler, rng=rng,
                                history=self.history_, best=best, best_state=best_state,
                                extra={"best_epoch": getattr(self, "best_epoch_", None)})
        if best_state is not None:
            self.net_.load_state_dict(best_state)
        self.net_.eval()
        self.fit_seconds_ = time.perf_counter() - t0
        self._readout = None
        return self

    def _holdout_split(self, train: Sessions, rng) -> tuple[Sessions, Sessions]:
        if self.target_view == "all":
            return random_holdout(train, self.holdout_share, rng)
        liked = train.weights >= self.like_threshold
        inputs, targets = random_holdout(train.filter_clicks(liked), self.holdout_share, rng)
        return merge_rows([inputs, train.filter_clicks(~liked)]), targets

    def _validate(self, validation) -> dict:
        from sketchrec.eval.protocols import evaluate_next_item, evaluate_topk
        inputs, targets, *exclude = validation
        if self.target == "next":
            metrics, _ = evaluate_next_item(self, inputs, targets, progress=False)
        else:
            metrics, _ = evaluate_topk(self, inputs, targets, ks=(10, 20), progress=False,
                                       exclude=exclude[0] if exclude else None)
        self.net_.train()
        return {k: v for k, v in metrics.items() if "@" in k}

    # -- encoding and scoring ---------------------------------------------------------------
    def _encode(self, histories: Sessions, without=()):
        """Concatenated sparse input sketches -> EmbeddingBag arguments (indices, offsets, weights).
        Input modalities named in `without` are occluded: their weights are zero."""
        unknown = set(without) - set(self.inputs)
        if unknown:
            raise ValueError(f"unknown input modalities {sorted(unknown)}; the model has {list(self.inputs)}")
        parts = []
        for spec, m in zip(self.inputs, self._modalities()):
            view = _view(histories, m.view, self.like_threshold)
            s = sketch_histories(view, self.codes_[m.source], self.width, sparse=True,
                                 decay=self.decay if m.view == "all" else None)
            if self.l2_input:
                _l2_per_depth(s, self.width)
            if spec in without:
                s.data[:] = 0
            parts.append(s)
        x = sp.hstack(parts, format="csr") if len(parts) > 1 else parts[0]
        return (torch.from_numpy(x.indices.astype(np.int64)), torch.from_numpy(x.indptr.astype(np.int64)),
                torch.from_numpy(x.data.astype(np.float32)))

    def predict_sketch(self, histories: Sessions, batch_size: int = 4096) -> np.ndarray:
        """(B, depth_out, width) float32 predicted output sketches (each depth row sums to 1)."""
        return np.exp(self._log_sketch(histories, batch_size))

    def _log_sketch(self, histories: Sessions, batch_size: int = 4096, without=()) -> np.ndarray:
        self._check_histories(histories)
        if self.max_prefix and self.target == "next":
            histories = histories.tail(self.max_prefix)
        self.net_.eval()
        out = []
        with torch.inference_mode():
            for start in range(0, len(histories), batch_size):
                batch = histories.take(np.arange(start, min(start + batch_size, len(histories))))
                out.append(self.net_(*self._encode(batch, without)).numpy())
        if not out:
            return np.zeros((0, self.net_.depth, self.width), np.float32)
        return np.concatenate(out)

    def explain(self, histories: Sessions, items, top_buckets: int = 5) -> list[dict]:
        """Why item `items[r]` is recommended for row r of `histories`: per input modality, the score
        drop when that modality is removed (occlusion), and the input buckets with the largest
        gradient x input on the item's score.

        Returns one dict per row: item, score, modalities {input spec: contribution}, buckets
        [(feature name, attribution), ...] (most influential first, by absolute value).
        """
        self._check_histories(histories)
        if getattr(self, "int8_", False):
            raise ValueError("an int8 model (EMDE.to_int8) has no gradients to explain with: load the float model")
        items = np.asarray(items, dtype=np.int64).reshape(-1)
        if len(items) != len(histories):
            raise ValueError(f"{len(items)} items for {len(histories)} rows")
        if len(items) and (items.min() < 0 or items.max() >= self.n_items_):
            raise ValueError(f"item ids must lie in [0, {self.n_items_})")
        if self.max_prefix and self.target == "next":
            histories = histories.tail(self.max_prefix)
        if getattr(self, "_readout", None) is None:
            self._prepare_readout()
        codes = torch.from_numpy(self._output_codes()[items].astype(np.int64))       # (B, depth)
        block = self.n_sketches * self.width
        indices, offsets, weights = self._encode(histories)
        self.net_.eval()

        def item_scores(w):
            log_p = self.net_(indices, offsets, w)                                     # (B, depth, width)
            picked = log_p.gather(2, codes.unsqueeze(2)).squeeze(2)                    # (B, depth)
            if self._readout_kind == "geometric":
                return picked.mean(1)
            if self._readout_kind == "min":
                return picked.min(1).values
            mass = torch.from_numpy(self._log_bucket_mass).gather(1, codes.T).T        # (B, depth)
            out = (picked - mass).sum(1)
            if self.prior:
                out = out + float(self.prior) * torch.from_numpy(self._log_item_prior[items])
            return out

        w = weights.clone().requires_grad_(True)
        scored = item_scores(w)
        scored.sum().backward()
        full = scored.detach()
        grad_x_input = (w.grad * weights).detach().numpy()
        modality_of = (indices // block).numpy()
        contributions = np.zeros((len(items), len(self.inputs)), dtype=np.float32)
        with torch.no_grad():
            for m in range(len(self.inputs)):
                occluded = torch.where(torch.from_numpy(modality_of == m), torch.zeros_like(weights), weights)
                contributions[:, m] = (full - item_scores(occluded)).numpy()
        names = self.feature_names()
        out = []
        for r in range(len(items)):
            sl = slice(int(offsets[r]), int(offsets[r + 1]))
            attr = grad_x_input[sl]
            order = np.argsort(-np.abs(attr))[:top_buckets]
            out.append({"item": int(items[r]), "score": float(full[r]),
                        "modalities": {spec: float(c) for spec, c in zip(self.inputs, contributions[r])},
                        "buckets": [(names[int(indices[sl][i])], float(attr[i])) for i in order]})
        return out

    def _readout_inputs(self, histories: Sessions, without=()) -> tuple[np.ndarray, dict]:
        """Predicted log-sketches and the readout's scale / bias for this model's readout."""
        if getattr(self, "_readout", None) is None:
            self._prepare_readout()
        log_p = self._log_sketch(histories, without=without)
        if self._readout_kind == "geometric":
            return log_p, {}
        if self._readout_kind == "min":
            return log_p, {"reduce": "min"}
        log_p -= self._log_bucket_mass
        # bayes sums over depth (the kernel averages) and adds the item prior, in the readout's pass
        return log_p, {"scale": log_p.shape[1],
                       "bias": np.float32(self.prior) * self._log_item_prior if self.prior else None}

    def score(self, histories: Sessions, without=()) -> np.ndarray:
        """(B, n_items) scores; input modalities named in `without` are occluded (as in `explain`)."""
        log_p, kw = self._readout_inputs(histories, without)
        return self._readout.from_log(log_p, **kw)

    def recommend(self, histories: Sessions, k: int = 20, exclude_seen: bool = False
                  ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k items per row, as `score` + `topk` but fused: no (B, n_items) score matrix."""
        self._check_fitted()
        if getattr(self, "_readout", None) is None:
            self._prepare_readout()
        if k < 1 or self._readout_kind == "min":                  # min: scores, then top-k
            return super().recommend(histories, k, exclude_seen)
        log_p, kw = self._readout_inputs(histories)
        exclude = (histories.indptr, histories.items) if exclude_seen else None
        return self._readout.topk(log_p, k, exclude=exclude, **kw)

    def _prepare_readout(self) -> None:
        codes = self._output_codes()
        if self.readout not in ("bayes", "geometric", "min", "mean"):
            raise ValueError(f"readout must be 'bayes', 'geometric' or 'min', got {self.readout!r}")
        if self.readout == "mean":
            warnings.warn("EMDE readout 'mean' is now called 'geometric' (the geometric mean over depth; "
                          "'min' is the count-min readout)", DeprecationWarning, stacklevel=3)
        self._readout_kind = "geometric" if self.readout == "mean" else self.readout
        self._readout = Readout(codes, self.width)
        # popularity, add-one smoothed so items unseen in training keep a finite score
        pop = (self.item_counts_.astype(np.float64) + 1.0)
        pop /= pop.sum()
        depth = codes.shape[1]
        mass = np.bincount((np.arange(depth) * self.width + codes).ravel(),
                           weights=np.repeat(pop, depth),
                           minlength=depth * self.width)
        self._log_bucket_mass = np.log(np.maximum(mass, 1e-30)).astype(np.float32).reshape(depth, self.width)
        self._log_item_prior = np.log(pop).astype(np.float32)

    def profile(self, histories: Sessions, sparse: bool = True):
        """Behavioural profiles: the input sketches of `histories` as features for downstream models.

        Returns a (B, n_modalities · N · width) scipy CSR (or dense float32 when
        sparse=False); columns are laid out modality by modality, depth by
        depth (see `feature_names`).
        """
        self._check_histories(histories)
        indices, offsets, weights = self._encode(histories)
        x = sp.csr_matrix((weights.numpy(), indices.numpy(), offsets.numpy()),
                          shape=(len(histories), self.n_inputs_))
        return x if sparse else x.toarray()

    def feature_names(self) -> list[str]:
        """Names of the `profile` columns: 'modality/depth/bucket'."""
        return [f"{spec}/d{d}/b{b}" for spec in self.inputs for d in range(self.n_sketches)
                for b in range(self.width)]

    # -- persistence ---------------------------------------------------------------------
    _state = ("n_inputs_", "item_counts_")

    def to_int8(self) -> "EMDE":
        """Switch the fitted network's linear layers to int8 for serving
        (`sketchrec.precision.int8_linear`): a faster network, scores that differ slightly. The
        int8 model still recommends and profiles, but it cannot be explained (no gradients),
        saved or trained further; fit again (or load the bundle again) for the float model."""
        self._check_fitted()
        if not getattr(self, "int8_", False):
            from sketchrec.precision import int8_linear
            self.net_ = int8_linear(self.net_)
            self.int8_ = True
        return self

    def _save_extra(self) -> dict[str, np.ndarray]:
        if getattr(self, "int8_", False):
            raise ValueError("an int8 serving copy (EMDE.to_int8) cannot be saved: save the float model")
        arrays = {f"codes.{s}": c for s, c in self.codes_.items()}
        arrays.update({f"net.{k}": v.detach().numpy() for k, v in self.net_.state_dict().items()})
        return arrays

    def _load_extra(self, arrays) -> None:
        self.codes_ = {k[6:]: arrays[k] for k in arrays if k.startswith("codes.")}
        self.n_inputs_ = int(self.n_inputs_)
        self.net_ = SketchNet(self.n_inputs_, self.hidden, len(self.outputs) * self.n_sketches, self.width,
                              self.n_blocks, self.batch_norm, self.dropout)
        # the network's tensors become views of the arrays (assign=True: no copy), so a bundle's
        # memory-mapped weights stay one copy in the page cache for every process serving them
        state = {k[4:]: torch.from_numpy(_writable(arrays[k])) for k in arrays if k.startswith("net.")}
        self.net_.load_state_dict(state, assign=True)
        self.net_.eval()
        self._readout = None


# -- helpers ----------------------------------------------------------------------------

def _writable(a) -> np.ndarray:
    """`a` itself when torch may wrap it (a writable ndarray; a copy-on-write memory map is one),
    else a copy."""
    a = np.asarray(a)
    return a if a.flags.writeable and a.flags.aligned else a.copy()


def _view(histories: Sessions, view: str, like_threshold: float) -> Sessions:
    if view == "all":
        return histories
    if view == "last":
        return histories.tail(1)
    if histories.weights is None:
        raise ValueError(f"view {view!r} needs click weights (e.g. ratings) in the histories")
    liked = histories.weights >= like_threshold
    return histories.filter_clicks(liked if view == "liked" else ~liked)


def _l2_per_depth(m: sp.csr_matrix, width: int) -> None:
    """In place: every (row, depth) segment of a sketch CSR gets unit L2 norm."""
    rows = np.repeat(np.arange(m.shape[0], dtype=np.int64), np.diff(m.indptr))
    n_depth = m.shape[1] // width
    key = rows * n_depth + m.indices // width
    norms = np.sqrt(np.bincount(key, weights=m.data.astype(np.float64) ** 2, minlength=m.shape[0] * n_depth))
    m.data /= np.maximum(norms[key], 1e-12).astype(np.float32)
