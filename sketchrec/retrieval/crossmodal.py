"""Cross-modal retrieval with T-EMDE pooling (Rychalska, Wieczorek, Dąbrowski, 2021).

A cross-modal model embeds both sides — image regions and text tokens — into
one space. Its global-similarity module pools each side's local features into
one vector; T-EMDE replaces the usual self-attention pooling with a trainable
density sketch:

- a centroid tensor C of shape N × K × D (N partitions = sketch depth, K
  centroids each = sketch width), shared by the two modalities so their
  sketches live in one space;
- every local feature goes through a modality's linear layer into N × D, gets its
  squared distance to the K centroids of each partition, and a soft assignment
  softmax_K(-d² / τ);
- summing assignments over the tokens / regions gives an N × K sketch, flattened
  and L2-normalised. Cost: linear in sequence length.

Two reference poolings over the same projected features: masked mean, and
SGRAF-style self-attention (weights = softmax over tokens of a learned score of
local ⊙ global, global = the masked mean).

Training: symmetric InfoNCE over the batch (or the VSE++ hinge with the hardest
negative); model selection by validation R-sum; metrics R@1/5/10 and MRR in
both directions (`sketchrec.retrieval.metrics.paired_retrieval_metrics`).

(Formerly `sketchrec.models.crossmodal`, which still imports for one release.)
"""

from __future__ import annotations

import json
import logging

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from sketchrec._deprecation import renamed_function
from sketchrec.base import Estimator
from sketchrec.retrieval.metrics import paired_retrieval_metrics
from sketchrec.training import EpochLoop, TrainingState, Validation, rollback_on_failure

log = logging.getLogger(__name__)
POOLINGS = ("mean", "attention", "temde")


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    m = mask.unsqueeze(2).to(x.dtype)
    return (x * m).sum(1) / m.sum(1).clamp(min=1)


class MeanPool(nn.Module):
    def forward(self, x, mask):
        return masked_mean(x, mask)


class AttentionPool(nn.Module):
    """SGRAF-style: w_t = softmax_t(u · (x_t ⊙ g)), g = masked mean of x, output Σ_t w_t x_t."""

    def __init__(self, dim: int):
        super().__init__()
        self.score = nn.Linear(dim, 1)

    def forward(self, x, mask):
        g = masked_mean(x, mask)
        logits = self.score(x * g.unsqueeze(1)).squeeze(2).masked_fill(~mask, -torch.inf)
        return (torch.softmax(logits, dim=1).unsqueeze(2) * x).sum(1)


class TEMDE(nn.Module):
    """Differentiable density sketch of a set of local features.

    in_dim : local feature size; centroids : shared (N, K, D) Parameter (or None: own ones);
    temperature τ of the soft assignment; `reduce` "sum" or "mean" over tokens.
    Output: (B, N·K), L2-normalised.
    """

    def __init__(self, in_dim: int, n: int = 16, k: int = 32, d: int = 64, temperature: float = 1.0,
                 centroids: nn.Parameter | None = None, reduce: str = "sum"):
        super().__init__()
        self.centroids = centroids if centroids is not None else nn.Parameter(torch.randn(n, k, d) * d ** -0.5)
        self.n, self.k, self.d = self.centroids.shape
        self.proj = nn.Linear(in_dim, self.n * self.d)
        self.temperature, self.reduce = temperature, reduce

    def assignments(self, x: torch.Tensor) -> torch.Tensor:
        """(B, L, N, K) soft assignments of every local feature in every partition."""
        b, length = x.shape[:2]
        z = self.proj(x).view(b * length, self.n, self.d).transpose(0, 1)              # (N, B.L, D)
        c = self.centroids
        cross = torch.bmm(z, c.transpose(1, 2))                                         # (N, B.L, K)
        d2 = z.pow(2).sum(-1, keepdim=True) - 2 * cross + c.pow(2).sum(-1).unsqueeze(1)
        d2 = d2.transpose(0, 1).reshape(b, length, self.n, self.k)
        return torch.softmax(-d2 / self.temperature, dim=-1)

    def forward(self, x, mask):
        a = self.assignments(x) * mask.view(*mask.shape, 1, 1).to(x.dtype)
        sketch = a.sum(1)
        if self.reduce == "mean":
            sketch = sketch / mask.sum(1).clamp(min=1).view(-1, 1, 1)
        return F.normalize(sketch.flatten(1), dim=1)


class CrossModalModel(nn.Module):
    """image regions (B, R, image_dim) and text tokens (B, T, text_dim) -> unit vectors in one space."""

    def __init__(self, image_dim: int, text_dim: int, pooling: str = "temde", dim: int = 512,
                 n: int = 16, k: int = 32, d: int = 64, temperature: float = 1.0, sketch_head: bool = False):
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
        self.pooling = pooling
        if pooling == "temde":
            # T-EMDE's own per-token projection into the centroids' space is the local layer: no extra
            # Linear before it, so a token costs one in_dim x (N.D) product, like the others' in_dim x dim
            self.image_local, self.text_local = nn.LayerNorm(image_dim), nn.LayerNorm(text_dim)
            shared = nn.Parameter(torch.randn(n, k, d) * d ** -0.5)
            self.image_pool = TEMDE(image_dim, centroids=shared, temperature=temperature)
            self.text_pool = TEMDE(text_dim, centroids=shared, temperature=temperature)
        else:
            self.image_local = nn.Sequential(nn.Linear(image_dim, dim), nn.LayerNorm(dim))
            self.text_local = nn.Sequential(nn.Linear(text_dim, dim), nn.LayerNorm(dim))
            if pooling == "mean":
                self.image_pool, self.text_pool = MeanPool(), MeanPool()
            else:
                self.image_pool, self.text_pool = AttentionPool(dim), AttentionPool(dim)
        if pooling != "temde":
            self.image_out, self.text_out = nn.Linear(dim, dim), nn.Linear(dim, dim)
        elif sketch_head:           # a Linear on the sketch: similarities no longer confined to >= 0
            self.image_out, self.text_out = nn.Linear(n * k, dim), nn.Linear(n * k, dim)

    def _side(self, local, pool, out, x, mask):
        v = pool(local(x), mask)
        return F.normalize(out(v) if out is not None else v, dim=1)

    def encode_images(self, regions: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        mask = torch.ones(regions.shape[:2], dtype=torch.bool) if mask is None else mask
        return self._side(self.image_local, self.image_pool, getattr(self, "image_out", None), regions, mask)

    def encode_texts(self, tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self._side(self.text_local, self.text_pool, getattr(self, "text_out", None), tokens, mask)


def info_nce(img: torch.Tensor, txt: torch.Tensor, temperature: float = 0.05) -> torch.Tensor:
    logits = img @ txt.T / temperature
    target = torch.arange(len(img))
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))


def vse_hinge(img: torch.Tensor, txt: torch.Tensor, margin: float = 0.2) -> torch.Tensor:
    """VSE++ (Faghri et al. 2018): hinge with the hardest negative in the batch, both directions."""
    s = img @ txt.T
    pos = s.diag()
    eye = torch.eye(len(s), dtype=torch.bool)
    cost_t = (margin + s - pos.unsqueeze(1)).clamp(min=0).masked_fill(eye, 0)    # image -> wrong texts
    cost_i = (margin + s - pos.unsqueeze(0)).clamp(min=0).masked_fill(eye, 0)    # text -> wrong images
    return cost_t.max(1).values.mean() + cost_i.max(0).values.mean()


#: the former name of `sketchrec.retrieval.metrics.paired_retrieval_metrics`
retrieval_scores = renamed_function(paired_retrieval_metrics, "retrieval_scores")


class PairedValidation:
    """Validation on held-out paired products: ``validation(trainer)`` is
    ``trainer.evaluate(regions, tokens, token_mask)`` (R@K and MRR both ways, rsum); the best
    epoch is chosen by R-sum (history key ``valid_rsum``). What `CrossModalTrainer.fit` makes
    of a ``validation=(regions, tokens, token_mask)`` tuple."""

    select = "rsum"

    def __init__(self, regions, tokens, token_mask):
        self.regions, self.tokens, self.token_mask = regions, tokens, token_mask

    def __call__(self, trainer: "CrossModalTrainer") -> dict[str, float]:
        return trainer.evaluate(self.regions, self.tokens, self.token_mask)


class CrossModalTrainer(Estimator):
    """Fit a `CrossModalModel` on paired (regions, tokens, token mask) with validation selection.

    pooling, dim, n, k, d, temperature, sketch_head : the model's (see `CrossModalModel`)
    loss : "infonce" or "vse" (the VSE++ hinge); epochs, batch_size, lr, weight_decay : AdamW
    with a cosine schedule; patience : epochs without a better validation R-sum before stopping
        (checked before each epoch, by `sketchrec.training.EpochLoop`: 0 trains no epoch)
    seed, threads, progress : randomness, torch threads, progress bars
    """

    _meta = ("image_dim_", "text_dim_")
    _transient = ("threads", "progress")
    _param_choices = {"pooling": POOLINGS, "loss": ("infonce", "vse")}
    #: the parameters that build the model (the rest are the training's)
    MODEL_PARAMS = ("pooling", "dim", "n", "k", "d", "temperature", "sketch_head")

    def __init__(self, pooling: str = "temde", dim: int = 512, n: int = 16, k: int = 32, d: int = 64,
                 temperature: float = 1.0, sketch_head: bool = False, loss: str = "infonce", epochs: int = 20,
                 batch_size: int = 128,
                 lr: float = 2e-4, weight_decay: float = 1e-4, patience: int = 4, seed: int = 0,
                 threads: int | None = None, progress: bool = True):
        self.pooling, self.dim, self.n, self.k, self.d = pooling, dim, n, k, d
        self.temperature, self.sketch_head = temperature, sketch_head
        self.loss, self.epochs, self.batch_size, self.lr = loss, epochs, batch_size, lr
        self.weight_decay, self.patience, self.seed = weight_decay, patience, seed
        self.threads, self.progress = threads, progress

    @property
    def model_params(self) -> dict:
        """The parameters that build the `CrossModalModel`, by name."""
        return {name: getattr(self, name) for name in self.MODEL_PARAMS}

    @property
    def params(self) -> dict:
        """Deprecated: `model_params` (the seven model parameters are attributes now)."""
        import warnings
        warnings.warn("CrossModalTrainer.params is deprecated: use model_params, or the attributes "
                      "themselves (the old name goes in the next release)", DeprecationWarning, stacklevel=2)
        return self.model_params

    def _fitted_marker(self) -> str:
        return "model_"

    def fit(self, regions, tokens, token_mask, validation=None) -> "CrossModalTrainer":
        """Train on paired (regions (n, R, image_dim), tokens (n, T, text_dim), token_mask (n, T)).

        validation : optional held-out products, a `(regions, tokens, token_mask)` tuple (scored
            by `evaluate` into ``valid_<metric>`` history keys, the best epoch chosen by
            ``valid_rsum``) or a `sketchrec.training.Validation` object; with it, training stops
            after `patience` epochs without a better R-sum and ends with the best epoch's weights.
        The epochs run in `sketchrec.training.EpochLoop`; a `fit` that fails leaves the trainer
        as it was.
        """
        with rollback_on_failure(self):
            return self._fit(regions, tokens, token_mask, validation)

    def _fit(self, regions, tokens, token_mask, validation) -> "CrossModalTrainer":
        if validation is not None and not isinstance(validation, Validation):
            validation = PairedValidation(*validation)
        torch.manual_seed(self.seed)
        if self.threads:
            torch.set_num_threads(self.threads)
        rng = np.random.default_rng(self.seed)
        self.image_dim_, self.text_dim_ = int(regions.shape[2]), int(tokens.shape[2])
        self.model_ = CrossModalModel(self.image_dim_, self.text_dim_, **self.model_params)
        optimiser = torch.optim.AdamW(self.model_.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, self.epochs)
        loss_fn = info_nce if self.loss == "infonce" else vse_hinge
        loop = EpochLoop(self.epochs, validation=validation, patience=self.patience, progress=self.progress,
                         name=self.pooling)
        n = len(regions)

        def train_epoch(epoch: int) -> dict:
            total = 0.0
            order = rng.permutation(n)
            batches = [order[s:s + self.batch_size] for s in range(0, n - self.batch_size + 1, self.batch_size)]
            for rows in loop.bar(batches, epoch):
                rows = np.sort(rows)
                img = self.model_.encode_images(torch.as_tensor(np.asarray(regions[rows], dtype=np.float32)))
                txt = self.model_.encode_texts(torch.as_tensor(np.asarray(tokens[rows], dtype=np.float32)),
                                               torch.as_tensor(token_mask[rows]))
                loss = loss_fn(img, txt)
                optimiser.zero_grad(set_to_none=True)
                loss.backward()
                optimiser.step()
                total += loss.item() * len(rows)
            return {"loss": total / max(1, len(batches) * self.batch_size)}

        loop.run(self, TrainingState(self.model_, optimiser, scheduler, rng), train_epoch)
        return self

    def embed(self, regions=None, tokens=None, token_mask=None, batch_size: int = 512):
        """(image vectors, text vectors) for whichever inputs are given."""
        self.model_.eval()
        img = txt = None
        with torch.inference_mode():
            if regions is not None:
                img = np.concatenate([self.model_.encode_images(torch.as_tensor(
                    np.asarray(regions[s:s + batch_size], dtype=np.float32))).numpy()
                    for s in range(0, len(regions), batch_size)])
            if tokens is not None:
                txt = np.concatenate([self.model_.encode_texts(
                    torch.as_tensor(np.asarray(tokens[s:s + batch_size], dtype=np.float32)),
                    torch.as_tensor(token_mask[s:s + batch_size])).numpy()
                    for s in range(0, len(tokens), batch_size)])
        return img, txt

    def evaluate(self, regions, tokens, token_mask) -> dict[str, float]:
        """`paired_retrieval_metrics` of the given products (R@K, MRR both ways, rsum)."""
        img, txt = self.embed(regions, tokens, token_mask)
        return paired_retrieval_metrics(img, txt)

    # -- persistence (Estimator.save / load): the network's weights, the history as JSON --------
    def _save_extra(self) -> dict[str, np.ndarray]:
        arrays = {f"model.{k}": v.detach().cpu().numpy() for k, v in self.model_.state_dict().items()}
        arrays["history_json"] = np.array(json.dumps(getattr(self, "history_", [])))
        if hasattr(self, "best_epoch_"):
            arrays["best_epoch"] = np.array(self.best_epoch_)
        return arrays

    def _load_extra(self, arrays) -> None:
        names = arrays.files if hasattr(arrays, "files") else list(arrays.keys())
        self.model_ = CrossModalModel(self.image_dim_, self.text_dim_, **self.model_params)
        self.model_.load_state_dict({k[len("model."):]: torch.from_numpy(np.array(arrays[k])) for k in names
                                     if k.startswith("model.")})
        self.model_.eval()
        self.history_ = json.loads(str(arrays["history_json"])) if "history_json" in names else []
        if "best_epoch" in names:
            self.best_epoch_ = int(arrays["best_epoch"])
