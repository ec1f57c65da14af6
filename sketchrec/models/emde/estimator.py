"""The EMDE recommender: settings, fitting (codes, then the network by `EpochLoop`), scoring,
profiles and persistence. The parts live beside it: modalities.py (input sketches), codes.py
(item codes), network.py, readout.py, explain.py."""

from __future__ import annotations

import hashlib
import json
import os
import time

import numpy as np
import scipy.sparse as sp
import torch

from sketchrec.data.sessions import Sessions, gather_prefixes, merge_rows, prefix_pairs, random_holdout
from sketchrec.data.stream import SessionStream
from sketchrec.models.base import Recommender
from sketchrec.models.emde.codes import source_codes
from sketchrec.models.emde.explain import explain as explain_rows
from sketchrec.models.emde.modalities import Modality, input_sketches
from sketchrec.models.emde.network import SketchNet
from sketchrec.models.emde.readout import READOUTS, popularity_tables, readout_arguments, readout_kind
from sketchrec.precision import use_bf16
from sketchrec.sketch.sketches import Readout, sketch_histories
from sketchrec.training import (EpochLoop, TrainingState, check_validation, fingerprint, rollback_on_failure,
                                torch_threads)


class EMDE(Recommender):
    """The defaults are the session-based setting chosen on Diginetica's validation split
    (`benchmarks/emde_sessions.py`); top-k settings are in `benchmarks/emde_topk.py`.

    Parameters
    ----------
    inputs : input modalities ("view:source", see the package docstring).
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
    row_weight : target="holdout" only: how much each row's loss counts. "row" (default): every row
        the same (its target sketch sums to 1 at each depth); "targets": in proportion to its
        number of target items (the multinomial likelihood of Mult-VAE, where a user with more
        items contributes more terms), normalised to mean 1 over the batch.
    hidden, n_blocks, batch_norm, dropout : network shape.
    l2_input : L2-normalise every depth row of the input sketches.
    epochs, batch_size, lr, weight_decay, lr_decay : Adam training; lr x lr_decay per epoch.
    patience : with validation, stop after this many epochs without a better validation score
        (None, the default: train every epoch; the best epoch's weights are kept either way).
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
    threads : torch threads (None, the default: all cores).
    """

    _param_choices = {"bias": ("quantile", "median"), "target": ("next", "holdout"), "target_view": ("all", "liked"),
                      "row_weight": ("row", "targets"),
                      "readout": READOUTS, "bf16": (True, False, "auto")}
    _param_bounds = {"n_sketches": (1, None), "n_bits": (1, 30), "decay": (0, 1), "cleora_dim": (1, None),
                     "holdout_share": (0, 1), "hidden": (1, None), "n_blocks": (0, None), "dropout": (0, 1),
                     "epochs": (0, None), "batch_size": (1, None), "lr": (0, None), "weight_decay": (0, None),
                     "lr_decay": (0, None), "patience": (0, None), "max_prefix": (0, None), "prior": (0, None),
                     "seed": (0, None), "threads": (1, None)}
    _state = ("n_inputs_", "item_counts_")

    def __init__(self, inputs=("all:cleora:1", "all:cleora:3", "last:cleora:1"),
                 outputs=("cleora:1", "cleora:3"), n_sketches: int = 10, n_bits: int = 7, bias: str = "quantile",
                 decay: float | None = 0.9, like_threshold: float = 4.0, cleora_dim: int = 256,
                 target: str = "next", holdout_share: float = 0.2, target_view: str = "all",
                 reconstruct: bool = False, row_weight: str = "row", hidden: int = 1024, n_blocks: int = 1,
                 batch_norm: bool = True, dropout: float = 0.0, l2_input: bool = True, epochs: int = 3,
                 batch_size: int = 512, lr: float = 4e-3, weight_decay: float = 0.0, lr_decay: float = 0.5,
                 patience: int | None = None, max_prefix: int = 50, readout: str = "bayes", prior: float = 1.0,
                 bf16: bool | str = "auto",
                 seed: int = 0, threads: int | None = None, progress: bool = True):
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
        self.row_weight = row_weight
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
        self.patience = patience
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
        t0 = time.perf_counter()
        sources = list(dict.fromkeys([m.source for m in self._modalities()] + list(self.outputs)))
        self.codes_ = source_codes(train, sources, self._embeddings, n_sketches=self.n_sketches,
                                   n_bits=self.n_bits, bias=self.bias, cleora_dim=self.cleora_dim, seed=self.seed)
        self.codes_seconds_ = time.perf_counter() - t0

    def _fit_codes_cached(self, train: SessionStream, path: str) -> None:
        """`_fit_codes`, read from `path` when it was written for these settings, added
        embeddings and log (else computed and written there, atomically): a resumed
        streaming fit skips the Cleora passes over the log. `codes_seconds_` is then the
        seconds the codes took when they were computed."""
        key = json.dumps({"params": self.get_params(), "log": fingerprint(train),
                          "embeddings": {k: hashlib.sha256(v.tobytes()).hexdigest()[:16]
                                         for k, v in sorted(self._embeddings.items())}}, sort_keys=True, default=str)
        if os.path.exists(path):
            with np.load(path, allow_pickle=False) as z:
                if str(z["key"]) == key:
                    self.codes_ = {k[len("codes."):]: z[k] for k in z.files if k.startswith("codes.")}
                    self.codes_seconds_ = float(z["seconds"])
                    return
        self._fit_codes(train)
        tmp = f"{path}.tmp"
        with open(tmp, "wb") as fh:
            np.savez(fh, key=np.array(key), seconds=np.array(self.codes_seconds_),
                     **{f"codes.{k}": v for k, v in self.codes_.items()})
        os.replace(tmp, path)

    def _output_codes(self) -> np.ndarray:
        return np.concatenate([self.codes_[s] for s in self.outputs], axis=1)

    def fit(self, train: Sessions | SessionStream, validation=None, callback=None, checkpoint=None,
            checkpoint_every: float = 600.0) -> "EMDE":
        """Learn codes and the network from training rows.

        train : `Sessions` in memory, or a `SessionStream` (target="next" only): a log of Parquet
            files larger than memory, read a row group at a time — a first pass counts items and
            sessions, Cleora codes take a pass per two steps (`sketchrec.graph.streaming`), and
            every epoch reads the log once with the row-group order shuffled and the training
            pairs shuffled inside each buffer of `SessionStream.buffer_events` events. Memory:
            the model, the item codes and one buffer's compact (start, length, target) pairs.
        Data-parallel: when `torch.distributed` is initialised with more than one process (e.g.
            under ``torchrun``), the network is wrapped in `DistributedDataParallel`; every rank
            reads the same data in the same seeded order and computes its share (rows rank::world)
            of each global batch of `batch_size`, so the steps are those of one process with that
            batch (with batch norm, each rank normalises by its own rows' statistics).

        validation : optional `sketchrec.training.Validation`, e.g.
            ``sketchrec.eval.validation.NextItemValidation(prefixes, targets)`` for target="next"
            or ``TopkValidation(inputs, targets, exclude=...)`` for target="holdout": evaluated
            after every epoch into `history_` (``valid_MRR@20`` / ``valid_NDCG@20`` ...); the best
            epoch by its `select` metric is kept (`best_epoch_`), and `patience` may stop early.
        callback : optional callable(epoch, model, history_row) after every epoch, before its checkpoint.
        checkpoint : optional path of an .npz written atomically after every epoch (weights,
            optimiser, random states, history). If it exists and was written for the same
            settings and training rows, training resumes after its last epoch: a killed run
            loses at most the epoch in progress. From a `SessionStream`, the state is also
            written inside an epoch, after a buffer when `checkpoint_every` seconds have passed
            since the last write (a 100M-event epoch takes hours), and the item codes once, beside
            it (``<checkpoint>.codes.npz``): a killed run loses at most that many seconds of
            training, and a resumed one skips the Cleora passes.

        A fit that fails (bad input, interrupt) leaves a fitted model as it was.
        """
        check_validation(validation, "EMDE.fit")
        with rollback_on_failure(self):
            return self._fit(train, validation, callback, checkpoint, checkpoint_every)

    def _fit(self, train: Sessions | SessionStream, validation, callback, checkpoint, checkpoint_every) -> "EMDE":
        mods = self._modalities()
        streaming = isinstance(train, SessionStream)
        if streaming and self.target != "next":
            raise ValueError(f"training from a SessionStream needs target='next', got target={self.target!r}")
        if train.weights is None and (self.target_view == "liked"
                                      or any(m.view in ("liked", "disliked") for m in mods)):
            raise ValueError("views 'liked' / 'disliked' need click weights (e.g. ratings) in the "
                             "training rows")
        torch.manual_seed(self.seed)
        torch_threads(self.threads)
        self.bf16_ = use_bf16(self.bf16, "EMDE training")
        rng = np.random.default_rng(self.seed)
        t0 = time.perf_counter()
        self.n_items_ = train.n_items
        self.item_counts_ = train.item_counts().astype(np.float32)
        if streaming and checkpoint is not None:
            self._fit_codes_cached(train, f"{checkpoint}.codes.npz")
        else:
            self._fit_codes(train)
        self._readout = None                 # read from these codes when validation scores
        self.n_inputs_ = len(mods) * self.n_sketches * self.width
        self.int8_ = False
        self.net_ = SketchNet(self.n_inputs_, self.hidden, len(self.outputs) * self.n_sketches, self.width,
                              self.n_blocks, self.batch_norm, self.dropout)
        # fused: one pass per parameter tensor; torch's default on CPU (one op per step of the update,
        # per tensor) spent ~0.5 s of every batch on the output layer's 10M weights at N 20, K 10
        optimiser = torch.optim.Adam(self.net_.parameters(), lr=self.lr, weight_decay=self.weight_decay, fused=True)
        scheduler = torch.optim.lr_scheduler.ExponentialLR(optimiser, gamma=self.lr_decay)
        loop = EpochLoop(self.epochs, validation=validation, patience=self.patience, checkpoint=checkpoint,
                         callback=callback, progress=self.progress, name="emde",
                         within_epoch_every=checkpoint_every if streaming else None)
        net = _data_parallel(self.net_)
        if self.target == "next":
            epoch = self._next_item_epochs(train, net, loop, optimiser, rng)
        else:
            epoch = self._holdout_epochs(train, net, loop, optimiser, rng)
        self.codes_setup_s_ = time.perf_counter() - t0
        loop.run(self, TrainingState(self.net_, optimiser, scheduler, rng), epoch, fingerprint(train))
        self.fit_seconds_ = time.perf_counter() - t0
        self._readout = None
        return self

    def _next_item_epochs(self, train: Sessions | SessionStream, net, loop: EpochLoop, optimiser, rng):
        """The epoch function of target="next": every prefix of a training row -> its next item.
        An epoch's rows: in memory, `train` as one buffer; from a stream, its buffers with the
        block order drawn from `rng` every epoch. The pairs of a buffer are (start, length,
        target) arrays, a batch's prefixes gathered and sketched when it is trained. After each
        buffer of a stream, `loop.within_epoch` may checkpoint the epoch's progress (the block
        order, blocks done, loss so far), from which a resumed run carries on."""
        out_codes = torch.from_numpy(self._output_codes().astype(np.int64))
        streaming = isinstance(train, SessionStream)

        def epoch(e: int) -> dict:
            done = loop.resumed_progress(e) or {}           # a checkpoint's progress inside this epoch
            total, seen = done.get("loss_sum", 0.0), done.get("examples", 0)
            cpu = time.process_time() - done.get("cpu_seconds", 0.0)
            if streaming:
                _same_on_every_rank(done.get("blocks", -1), "the resumed checkpoints' position in the epoch "
                                    "(each process resumes its own checkpoint file; they must be of one moment)")
                order = np.asarray(done["order"]) if done else rng.permutation(len(train.blocks))
                blocks = done.get("blocks", 0)
                buffers = train.buffers(order[blocks:])
            else:
                buffers = [train]
            for sessions in buffers:
                starts, lengths, targets = prefix_pairs(sessions, max_prefix=self.max_prefix or None)
                rows = rng.permutation(len(targets))

                def batch_loss(rows, sessions=sessions, starts=starts, lengths=lengths, targets=targets):
                    with self._autocast():
                        log_p = net(*self._encode(gather_prefixes(sessions, starts[rows], lengths[rows])))
                    return -log_p.gather(2, out_codes[torch.from_numpy(targets[rows].astype(np.int64))].unsqueeze(2)).mean()
                t, n = self._train_batches(rows, batch_loss, optimiser,
                                           loop.bar(range(0, len(rows), self.batch_size), e))
                total, seen = total + t, seen + n
                if streaming:
                    blocks += sessions.meta["blocks"]
                    if _any_rank(loop.within_epoch_due()):       # every process writes at the same buffer
                        loop.within_epoch(e, {"order": order.tolist(), "blocks": blocks, "loss_sum": total,
                                              "examples": seen, "cpu_seconds": time.process_time() - cpu}, force=True)
            # CPU seconds of the process (all threads): an epoch's cost when other jobs share the cores
            return {"loss": total / max(seen, 1), "examples": seen, "cpu_seconds": time.process_time() - cpu}
        return epoch

    def _holdout_epochs(self, train: Sessions, net, loop: EpochLoop, optimiser, rng):
        """The epoch function of target="holdout": each epoch a fresh random split of every row
        into input and held-out items; the held-out part's sketch is the target."""
        out_codes = self._output_codes()

        def epoch(e: int) -> dict:
            order = rng.permutation(len(train))
            inputs, targets = self._holdout_split(train, rng)
            if self.reconstruct:
                targets = merge_rows([inputs, targets])
                if self.target_view == "liked":
                    targets = targets.filter_clicks(targets.weights >= self.like_threshold)

            def batch_loss(rows):
                rows_targets = targets.take(rows)
                t = torch.from_numpy(sketch_histories(rows_targets, out_codes, self.width))
                with self._autocast():
                    log_p = net(*self._encode(inputs.take(rows)))
                if self.row_weight == "targets":
                    n = torch.from_numpy(rows_targets.lengths.astype(np.float32))
                    return (-(t * log_p).sum(2).mean(1) * n).sum() / n.sum().clamp(min=1.0)
                return -(t * log_p).sum(2).mean()
            total, seen = self._train_batches(order, batch_loss, optimiser,
                                              loop.bar(range(0, len(order), self.batch_size), e))
            return {"loss": total / max(seen, 1), "examples": seen}
        return epoch

    def _train_batches(self, order: np.ndarray, batch_loss, optimiser, bar) -> tuple[float, int]:
        """One pass of Adam steps over `order` in batches; batch_loss(rows) -> mean loss tensor.
        Returns (sum of the losses, rows trained by this process; an epoch's history row has
        them as "examples"). Data-parallel (see `fit`), this process trains rows
        rank::world of each batch, its mean loss weighted by its share of the batch x world, so
        DDP's gradient average is the gradient of the whole batch's mean loss."""
        rank, world = _rank_and_world()
        total, seen = 0.0, 0
        for start in bar:
            rows = order[start:start + self.batch_size]
            if len(rows) < 2 * world:      # batch norm needs two rows (on every process)
                continue
            local = rows[rank::world] if world > 1 else rows
            loss = batch_loss(local)
            optimiser.zero_grad(set_to_none=True)
            (loss * (len(local) * world / len(rows)) if world > 1 else loss).backward()
            optimiser.step()
            total += loss.item() * len(local)
            seen += len(local)
            if self.progress:
                bar.set_postfix(loss=f"{total / seen:.4f}", refresh=False)
        return total, seen

    def _autocast(self):
        """The training forward pass's bfloat16 autocast (on when `bf16_`)."""
        return torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16_)

    def _holdout_split(self, train: Sessions, rng) -> tuple[Sessions, Sessions]:
        if self.target_view == "all":
            return random_holdout(train, self.holdout_share, rng)
        liked = train.weights >= self.like_threshold
        inputs, targets = random_holdout(train.filter_clicks(liked), self.holdout_share, rng)
        return merge_rows([inputs, train.filter_clicks(~liked)]), targets

    # -- encoding and scoring ---------------------------------------------------------------
    def _encode(self, histories: Sessions, without=()):
        """Concatenated sparse input sketches -> EmbeddingBag arguments (indices, offsets, weights).
        Input modalities named in `without` are occluded: their weights are zero."""
        self._modalities()
        return input_sketches(histories, self.inputs, self.codes_, self.width, decay=self.decay,
                              like_threshold=self.like_threshold, l2_input=self.l2_input, without=without)

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
        """Why item `items[r]` is recommended for row r of `histories`: per input modality, the
        score drop when it is occluded, and the input buckets with the largest gradient x input
        (see `sketchrec.models.emde.explain.explain`). One dict per row: item, score,
        modalities {input spec: contribution}, buckets [(feature name, attribution), ...]."""
        return explain_rows(self, histories, items, top_buckets)

    @property
    def _readout_kind(self) -> str:
        # read from the parameter every time: set_params(readout=...) on a fitted model takes effect
        return readout_kind(self.readout, stacklevel=4)

    def _prepare_readout(self) -> None:
        codes = self._output_codes()
        self._readout = Readout(codes, self.width)
        self._log_bucket_mass, self._log_item_prior = popularity_tables(codes, self.width, self.item_counts_)

    def _readout_inputs(self, histories: Sessions, without=()) -> tuple[np.ndarray, dict]:
        """Predicted log-sketches and the readout's scale / bias for this model's readout."""
        if getattr(self, "_readout", None) is None:
            self._prepare_readout()
        return readout_arguments(self._log_sketch(histories, without=without), self._readout_kind,
                                 self._log_bucket_mass, self._log_item_prior, self.prior)

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

    # -- serving and persistence -------------------------------------------------------------
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


def _rank_and_world() -> tuple[int, int]:
    """(rank, world size) of the initialised torch.distributed group, else (0, 1)."""
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _any_rank(flag: bool) -> bool:
    """`flag` of this process, or'ed over every process when data-parallel."""
    if _rank_and_world()[1] == 1:
        return flag
    t = torch.tensor([int(flag)])
    torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.MAX)
    return bool(t.item())


def _same_on_every_rank(value: int, what: str) -> None:
    """Refuse (RuntimeError naming `what`) an int that differs between data-parallel processes."""
    if _rank_and_world()[1] == 1:
        return
    lo, hi = torch.tensor([value]), torch.tensor([value])
    torch.distributed.all_reduce(lo, op=torch.distributed.ReduceOp.MIN)
    torch.distributed.all_reduce(hi, op=torch.distributed.ReduceOp.MAX)
    if lo.item() != hi.item():
        raise RuntimeError(f"data-parallel processes differ in {what}: {lo.item()} vs {hi.item()}")


def _data_parallel(net: torch.nn.Module) -> torch.nn.Module:
    """`net` wrapped in DistributedDataParallel when more than one process trains, else `net`."""
    if _rank_and_world()[1] == 1:
        return net
    return torch.nn.parallel.DistributedDataParallel(net)


def _writable(a) -> np.ndarray:
    """`a` itself when torch may wrap it (a writable ndarray; a copy-on-write memory map is one),
    else a copy."""
    a = np.asarray(a)
    return a if a.flags.writeable and a.flags.aligned else a.copy()
