"""The SR-GNN and TAGNN recommenders: settings, training (by `EpochLoop`), scoring, persistence."""

from __future__ import annotations

import time

import numba
import numpy as np
import torch

from sketchrec._memory import trim_heap
from sketchrec.augment.adjacency import AdjacencyAugmentation
from sketchrec.data.sessions import Sessions, expand_prefixes
from sketchrec.models._table_adam import TableAdam
from sketchrec.models.base import Recommender
from sketchrec.models.srgnn.functions import softmax_cross_entropy
from sketchrec.models.srgnn.graphs import PAD_MULTIPLE, batch_order, node_counts, session_graphs
from sketchrec.models.srgnn.network import GatedGraphNet
from sketchrec.precision import use_bf16
from sketchrec.training import EpochLoop, TrainingState, check_validation, fingerprint, rollback_on_failure, torch_threads

TRIM_EVERY = 50          # batches between handing glibc's free heap pages back (sketchrec._memory)


class SRGNN(Recommender):
    """SR-GNN. Parameters: hidden, step, epochs (at most), batch_size, lr, lr_decay_every
    (epochs), lr_decay, l2 (Adam weight decay), max_len (clicks kept per prefix), patience
    (epochs without a better validation score before stopping), stop_on (the validation score
    that keeps the best epoch and stops early: "mrr" = MRR@20, "loss" = mean cross-entropy over
    all items, which the validation must report: NextItemValidation(..., loss=True)), init_std (None: weights ~ U(±1/sqrt(hidden)); a float: N(0, init_std)),
    bf16 (autocast the network in training; scoring stays float32),
    bf16_attention (TAGNN: only the target attention's GEMMs take bf16 operands in training);
    both bf16 options default to "auto": on where the CPU computes bf16 natively (AVX-512 BF16
    or AMX), off where it would be emulated and many times slower (`sketchrec.precision`),
    seed, threads, progress."""

    target_aware = False
    _pad_multiple = PAD_MULTIPLE
    _param_choices = {"bf16": (True, False, "auto"), "bf16_attention": (True, False, "auto"),
                      "stop_on": ("mrr", "loss")}
    _param_bounds = {"hidden": (1, None), "step": (0, None), "epochs": (0, None), "batch_size": (1, None),
                     "lr": (0, None), "lr_decay_every": (1, None), "lr_decay": (0, None), "l2": (0, None),
                     "max_len": (1, None), "patience": (0, None), "init_std": (0, None), "seed": (0, None),
                     "threads": (1, None)}

    def __init__(self, hidden: int = 100, step: int = 1, epochs: int = 10, batch_size: int = 100,
                 lr: float = 1e-3, lr_decay_every: int = 3, lr_decay: float = 0.1, l2: float = 1e-5,
                 max_len: int = 50, patience: int = 2, stop_on: str = "mrr", init_std: float | None = None,
                 bf16: bool | str = "auto",
                 bf16_attention: bool | str = "auto",
                 seed: int = 0,
                 threads: int | None = None, progress: bool = True):
        self.hidden = hidden
        self.step = step
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.lr_decay_every = lr_decay_every
        self.lr_decay = lr_decay
        self.l2 = l2
        self.max_len = max_len
        self.patience = patience
        self.stop_on = stop_on
        self.init_std = init_std
        self.bf16 = bf16
        self.bf16_attention = bf16_attention
        self.seed = seed
        self.threads = threads
        self.progress = progress

    def fit(self, train: Sessions, validation=None, augmentation: AdjacencyAugmentation | None = None,
            checkpoint: str | None = None, callback=None, init_from: "SRGNN | None" = None,
            last_pair_only: bool = False) -> "SRGNN":
        """Train on every prefix -> next item of `train`.

        validation : optional `sketchrec.training.Validation`, e.g.
            ``sketchrec.eval.validation.NextItemValidation(prefixes, targets, loss=True)``: its
            metrics after every epoch go into `history_` (``valid_MRR@20``, ``valid_loss`` ...);
            the best epoch's weights (by `stop_on`: MRR@20, or "loss", which the validation must
            report) are kept and training stops after `patience` epochs without improvement.
        augmentation : optional training-time adjacency augmentation (evaluation never uses it).
        checkpoint : optional .npz path written atomically after every epoch; an existing one
            for the same settings and rows is resumed (a killed run loses at most one epoch).
        callback : optional callable(epoch, model, history_row).
        init_from : optional fitted model whose weights start the training (fine-tuning).
        last_pair_only : train on each row's last click given the clicks before it only
            (rows are already (prefix, target) pairs), instead of on every prefix.

        A fit that fails (bad input, interrupt) leaves a fitted model as it was.
        """
        if len(train) == 0:
            raise ValueError("SR-GNN needs at least one training session")
        if self.stop_on not in ("mrr", "loss"):
            raise ValueError(f"stop_on must be 'mrr' or 'loss', got {self.stop_on!r}")
        check_validation(validation, f"{type(self).__name__}.fit")
        if self.stop_on == "loss" and getattr(validation, "loss", None) is False:
            raise ValueError(f"{type(self).__name__}(stop_on='loss') needs a validation that reports 'loss', "
                             "e.g. NextItemValidation(prefixes, targets, loss=True)")
        with rollback_on_failure(self):
            return self._fit(train, validation, augmentation, checkpoint, callback, init_from, last_pair_only)

    def _fit(self, train, validation, augmentation, checkpoint, callback, init_from, last_pair_only) -> "SRGNN":
        torch.manual_seed(self.seed)
        torch_threads(self.threads)
        self.bf16_ = use_bf16(self.bf16, f"{type(self).__name__} training")
        self.bf16_attention_ = self.target_aware and use_bf16(self.bf16_attention, "TAGNN attention")
        if self.bf16_attention_:      # the attention kernels' threads too
            numba.set_num_threads(min(self.threads or numba.config.NUMBA_NUM_THREADS, numba.config.NUMBA_NUM_THREADS))
        rng = np.random.default_rng(self.seed)
        self.n_items_ = train.n_items
        self.net_ = GatedGraphNet(train.n_items, self.hidden, self.step, self.target_aware, self.bf16_attention_,
                                  self.init_std)
        if init_from is not None:
            self.net_.load_state_dict(init_from.net_.state_dict())
        optimiser = TableAdam(self.net_.parameters(), self.net_.embedding.weight, lr=self.lr, weight_decay=self.l2)
        scheduler = torch.optim.lr_scheduler.StepLR(optimiser, self.lr_decay_every, self.lr_decay)
        if last_pair_only:
            train = train.take(train.lengths >= 2)
            targets = train.items[train.indptr[1:] - 1]
            prefixes = train.filter_clicks(~np.isin(np.arange(train.nnz), train.indptr[1:] - 1))
        else:
            prefixes, targets = expand_prefixes(train)
        prefixes = prefixes.tail(self.max_len)
        if len(targets) == 0:
            raise ValueError("SR-GNN needs sessions of two or more clicks")
        loop = EpochLoop(self.epochs, validation=validation, select="loss" if self.stop_on == "loss" else "MRR@20",
                         lower_is_better=self.stop_on == "loss", patience=self.patience, checkpoint=checkpoint,
                         callback=callback, progress=self.progress, name=type(self).__name__.lower())
        epoch = self._epochs(prefixes, targets, augmentation, loop, optimiser, rng)
        rows_id = fingerprint(train) + ("" if augmentation is None else f":{augmentation.name}")
        self.net_.table_optimiser = optimiser       # bf16 training scores with its table copy
        loop.run(self, TrainingState(self.net_, optimiser, scheduler, rng), epoch, rows_id)
        self.net_.table_optimiser = None
        return self

    def _epochs(self, prefixes: Sessions, targets: np.ndarray, augmentation, loop: EpochLoop, optimiser, rng):
        """The epoch function: every (prefix, target) once, in batches of `batch_size` (TAGNN's
        grouped by graph size), with per-part timings."""
        targets_t = torch.from_numpy(targets.astype(np.int64))
        sizes = node_counts(prefixes) if self.target_aware else None

        def epoch(e: int) -> dict:
            t_graphs = t_net = t_opt = total = 0.0
            batches = batch_order(rng, len(targets), self.batch_size, sizes)
            for i, rows in enumerate(loop.bar(batches, e)):
                if i % TRIM_EVERY == 0:
                    trim_heap()
                t0 = time.perf_counter()
                graphs = session_graphs(prefixes.take(rows), augment=augmentation, rng=rng,
                                        multiple=self._pad_multiple).tensors()
                t1 = time.perf_counter()
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16_):
                    scores = self.net_(*graphs)
                loss = softmax_cross_entropy(scores, targets_t[rows])
                optimiser.zero_grad(set_to_none=True)
                loss.backward()
                t2 = time.perf_counter()
                optimiser.step()
                t3 = time.perf_counter()
                t_graphs, t_net, t_opt = t_graphs + t1 - t0, t_net + t2 - t1, t_opt + t3 - t2
                total += loss.item() * len(rows)
            return {"loss": total / len(targets), "graphs_s": t_graphs, "forward_backward_s": t_net,
                    "optimiser_s": t_opt}
        return epoch

    # -- scoring --------------------------------------------------------------------------
    def _chunks(self, histories: Sessions):
        """Scoring batches: TAGNN's (B, n, N) attention is kept to ~100 rows at a time."""
        step = 100 if self.target_aware else len(histories)
        for start in range(0, len(histories), step):
            yield histories.take(np.arange(start, min(start + step, len(histories))))

    def score(self, histories: Sessions) -> np.ndarray:
        self._check_histories(histories)
        with torch.inference_mode():                       # always float32: bf16 logits tie at the top
            parts = [self.net_(*session_graphs(c, self.max_len, multiple=self._pad_multiple).tensors())
                     .float().numpy() for c in self._chunks(histories)]
        return np.concatenate(parts).astype(np.float32, copy=False)

    def session_vectors(self, histories: Sessions, batch_size: int = 1000) -> np.ndarray:
        """(n_rows, hidden) float32 session representations s_h (e.g. for clustering)."""
        self._check_histories(histories)
        out = []
        with torch.inference_mode():
            for start in range(0, len(histories), batch_size):
                batch = histories.take(np.arange(start, min(start + batch_size, len(histories))))
                graphs = session_graphs(batch, self.max_len, multiple=self._pad_multiple).tensors()
                out.append(self.net_.session_vectors(*graphs).numpy())
        return np.concatenate(out) if out else np.zeros((0, self.hidden), np.float32)

    def item_vectors(self) -> np.ndarray:
        """(n_items, hidden) float32 learned item embeddings (e.g. an augmentation's source)."""
        self._check_fitted()
        return self.net_.embedding.weight.detach().numpy().copy()

    # -- persistence ----------------------------------------------------------------------
    def _save_extra(self) -> dict[str, np.ndarray]:
        return {f"net.{k}": v.detach().numpy() for k, v in self.net_.state_dict().items()}

    def _load_extra(self, arrays) -> None:
        self.net_ = GatedGraphNet(self.n_items_, self.hidden, self.step, self.target_aware)   # scoring only
        self.net_.load_state_dict({k[4:]: torch.from_numpy(arrays[k].copy()) for k in arrays.files
                                   if k.startswith("net.")})
        self.net_.eval()


class TAGNN(SRGNN):
    """TAGNN: SR-GNN plus target-aware attention (a session vector per candidate item).
    Training batches group prefixes of similar graph size, since the attention costs
    batch x nodes x items."""

    target_aware = True
    _pad_multiple = 1
