"""Trainable retrieval embeddings with the Centroid Triplet Loss (Wieczorek et al., ICONIP 2021).

The model is the paper's base: a backbone, global pooling to a feature f, a
BNNeck (BatchNorm1d without shift) giving f_bn, and a bias-free classifier on
f_bn. Metric losses act on f, cross-entropy on the classifier logits, and
retrieval uses f_bn. Losses:

- label-smoothed cross-entropy (ε = 0.1);
- batch-hard triplet loss (Hermans et al. 2017): hardest positive, hardest negative per anchor;
- centre loss (Wen et al. 2016): squared distance of f to a learned centre of its class;
- Centroid Triplet Loss: anchor vs the leave-one-out centroid of its own class in the batch
  (positive) and the nearest centroid of another class in the batch (negative), on squared
  Euclidean distances (``ctl_distance="squared"``, the PhD thesis's Eq. 26) or on Euclidean
  distances (``"euclidean"``, what earlier runs used).

Batches are P classes × M samples (`PKSampler`), so every class in a batch has M - 1
other samples to form the anchor's positive centroid.

Backbones: `SmallCNN` (grey or colour images trained from scratch), `MLPHead`
(precomputed embeddings of any modality); a torchvision-style module may be passed
as `backbone` too (it must map a batch to (B, feature_dim)).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from sketchrec.base import Estimator
from sketchrec.training import EpochLoop, TrainingState, rollback_on_failure

log = logging.getLogger(__name__)


# -- sampling -----------------------------------------------------------------------------
class PKSampler:
    """Batches of P classes × M samples. Classes with fewer than M samples are drawn with
    replacement; an epoch visits every class about len(labels) / (P·M) · P / n_classes times."""

    def __init__(self, labels: np.ndarray, p: int, m: int, seed: int = 0):
        self.labels = np.asarray(labels)
        self.classes, inverse = np.unique(self.labels, return_inverse=True)
        if len(self.classes) < 2:
            raise ValueError("PKSampler needs at least two classes")
        self.p, self.m = min(p, len(self.classes)), m
        order = np.argsort(inverse, kind="stable")
        self.members = np.split(order, np.cumsum(np.bincount(inverse))[:-1])
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return max(1, len(self.labels) // (self.p * self.m))

    def __iter__(self):
        for _ in range(len(self)):
            chosen = self.rng.choice(len(self.classes), self.p, replace=False)
            batch = [self.rng.choice(self.members[c], self.m, replace=len(self.members[c]) < self.m)
                     for c in chosen]
            yield np.concatenate(batch)


# -- losses -------------------------------------------------------------------------------
def _pairwise_sq(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a.pow(2).sum(1, keepdim=True) + b.pow(2).sum(1) - 2 * a @ b.T).clamp(min=0)


def batch_hard_triplet(features: torch.Tensor, labels: torch.Tensor, margin: float = 0.3) -> torch.Tensor:
    """mean_a [ max_p d(a, p) - min_n d(a, n) + margin ]_+ with Euclidean d."""
    d = _pairwise_sq(features, features).add(1e-12).sqrt()
    same = labels[:, None] == labels[None, :]
    hardest_pos = (d * same).max(1).values
    hardest_neg = d.masked_fill(same, torch.inf).min(1).values
    return F.relu(hardest_pos - hardest_neg + margin).mean()


CTL_DISTANCES = ("squared", "euclidean")


def centroid_triplet(features: torch.Tensor, labels: torch.Tensor, margin: float = 0.3,
                     distance: str = "squared") -> torch.Tensor:
    """mean_a [ D(a, c_pos(a)) - min_{c != y(a)} D(a, c) + margin ]_+, where c_pos(a) is the mean of
    the other samples of a's class in the batch and c the class means; D(x, y) = ||x - y||² for
    distance "squared" (the PhD thesis's Eq. 26), ||x - y|| for "euclidean". Anchors whose class
    has no other sample in the batch are skipped. features : (B, d) float; labels : (B,) int."""
    if distance not in CTL_DISTANCES:
        raise ValueError(f"distance must be one of {CTL_DISTANCES}, got {distance!r}")
    classes, inverse = torch.unique(labels, return_inverse=True)
    one_hot = F.one_hot(inverse, len(classes)).to(features.dtype)               # (B, C)
    counts = one_hot.sum(0)                                                      # (C,)
    sums = one_hot.T @ features                                                  # (C, d)
    own_count = counts[inverse]
    usable = own_count > 1
    if not usable.any() or len(classes) < 2:
        return features.sum() * 0
    loo = (sums[inverse] - features) / (own_count - 1).clamp(min=1)[:, None]     # leave-one-out centroid
    d_pos = (features - loo).pow(2).sum(1)
    centroids = sums / counts[:, None]
    d_all = _pairwise_sq(features, centroids)                                    # (B, C)
    if distance == "euclidean":
        d_pos, d_all = d_pos.add(1e-12).sqrt(), d_all.add(1e-12).sqrt()
    d_neg = d_all.masked_fill(one_hot.bool(), torch.inf).min(1).values
    return F.relu(d_pos - d_neg + margin)[usable].mean()


class CentreLoss(nn.Module):
    """0.5 · mean ||f - c_y||² with a learned centre per class."""

    def __init__(self, n_classes: int, dim: int):
        super().__init__()
        self.centres = nn.Parameter(torch.randn(n_classes, dim) * 0.01)

    def forward(self, features: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return 0.5 * (features - self.centres[labels]).pow(2).sum(1).mean()


# -- models -------------------------------------------------------------------------------
class SmallCNN(nn.Module):
    """Four conv-BN-ReLU stages (32, 64, 128, `width`) with max-pooling, then global average pooling."""

    def __init__(self, in_channels: int = 1, width: int = 256):
        super().__init__()
        chans = [in_channels, 32, 64, 128, width]
        layers = []
        for i in range(4):
            layers += [nn.Conv2d(chans[i], chans[i + 1], 3, padding=1, bias=False), nn.BatchNorm2d(chans[i + 1]),
                       nn.ReLU(inplace=True)]
            if i < 3:
                layers.append(nn.MaxPool2d(2))
        self.body = nn.Sequential(*layers)
        self.in_channels, self.out_dim = in_channels, width

    def spec(self) -> dict:
        """What rebuilds this backbone (`backbone_from_spec`), for saving a trainer without pickle."""
        return {"class": "SmallCNN", "in_channels": self.in_channels, "width": self.out_dim}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x).mean((2, 3))


class MLPHead(nn.Module):
    """Linear-BN-ReLU-Linear over precomputed embeddings of any modality."""

    def __init__(self, in_dim: int, hidden: int = 512, out_dim: int = 256):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(in_dim, hidden), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True),
                                  nn.Linear(hidden, out_dim))
        self.in_dim, self.hidden, self.out_dim = in_dim, hidden, out_dim

    def spec(self) -> dict:
        """What rebuilds this backbone (`backbone_from_spec`), for saving a trainer without pickle."""
        return {"class": "MLPHead", "in_dim": self.in_dim, "hidden": self.hidden, "out_dim": self.out_dim}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


BACKBONES = {"SmallCNN": SmallCNN, "MLPHead": MLPHead}


def backbone_from_spec(spec: dict) -> nn.Module:
    """A fresh backbone from its `spec()` ({"class": "SmallCNN" or "MLPHead", its arguments})."""
    spec = dict(spec)
    name = spec.pop("class", None)
    if name not in BACKBONES:
        raise ValueError(f"backbone class {name!r} is not one of {sorted(BACKBONES)}")
    return BACKBONES[name](**spec)


class RetrievalNet(nn.Module):
    """backbone -> f -> BNNeck -> f_bn -> bias-free classifier."""

    def __init__(self, backbone: nn.Module, n_classes: int, feature_dim: int | None = None):
        super().__init__()
        self.backbone = backbone
        dim = feature_dim or backbone.out_dim
        self.bnneck = nn.BatchNorm1d(dim)
        self.bnneck.bias.requires_grad_(False)                # the BNNeck's shift is frozen at 0
        self.classifier = nn.Linear(dim, n_classes, bias=False)
        nn.init.normal_(self.classifier.weight, std=0.001)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        f = self.backbone(x)
        f_bn = self.bnneck(f)
        return f, f_bn, self.classifier(f_bn)


# -- training -----------------------------------------------------------------------------
@dataclass
class LossWeights:
    """Weights of the loss terms; ctl=0 gives the paper's base model without CTL. `margin` is the
    triplet and CTL margin; `ctl_distance` the CTL's distance (see `centroid_triplet`)."""
    ce: float = 1.0
    triplet: float = 1.0
    centre: float = 5e-4
    ctl: float = 1.0
    margin: float = 0.3
    label_smoothing: float = 0.1
    ctl_distance: str = "squared"

    def __post_init__(self):
        if self.ctl_distance not in CTL_DISTANCES:
            raise ValueError(f"ctl_distance must be one of {CTL_DISTANCES}, got {self.ctl_distance!r}")


@dataclass
class TrainReport:
    """A fit's epochs (the trainer's `history_`, one dict per epoch: epoch, loss, seconds, ce,
    triplet, centre, ctl; files saved before the shared loop name the total "total") and seconds."""
    history: list = field(default_factory=list)
    seconds: float = 0.0


class RetrievalTrainer(Estimator):
    """Train a `RetrievalNet` with P×M batches and the losses above.

    backbone : the feature network (trained in place, as the net's first stage)
    weights : `LossWeights` (None: the defaults)
    epochs, p, m, lr, weight_decay : training length, P classes x M samples per batch, Adam
    seed, threads, progress, augment : randomness, torch threads, a progress bar, and an optional
        callable(batch tensor) -> batch tensor applied in training only

    fit(inputs, labels): inputs (n, ...) float32 tensor-able array (images (n, C, H, W) or
    embeddings (n, d)), labels (n,) class ids of the training identities / products.
    Saves and loads (`Estimator.save`) with a `SmallCNN` or `MLPHead` backbone.
    """

    _state = ("classes_",)
    _transient = ("threads", "progress", "augment")

    def __init__(self, backbone: nn.Module, weights: LossWeights | None = None, epochs: int = 30,
                 p: int = 16, m: int = 4, lr: float = 3.5e-4, weight_decay: float = 5e-4, seed: int = 0,
                 threads: int | None = None, progress: bool = True, augment=None):
        self.backbone, self.weights = backbone, weights
        self.epochs, self.p, self.m, self.lr, self.weight_decay = epochs, p, m, lr, weight_decay
        self.seed, self.threads, self.progress, self.augment = seed, threads, progress, augment

    def _fitted_marker(self) -> str:
        return "net_"

    def fit(self, inputs: np.ndarray, labels: np.ndarray) -> "RetrievalTrainer":
        """Train on `inputs` with class ids `labels`. The epochs run in
        `sketchrec.training.EpochLoop` (no validation: every epoch is kept); `history_` gets one
        row per epoch: epoch, loss (the weighted total), seconds, ce, triplet, centre, ctl. A
        `fit` that fails leaves the trainer as it was."""
        with rollback_on_failure(self):
            return self._fit(inputs, labels)

    def _fit(self, inputs: np.ndarray, labels: np.ndarray) -> "RetrievalTrainer":
        torch.manual_seed(self.seed)
        if self.threads:
            torch.set_num_threads(self.threads)
        classes, y = np.unique(np.asarray(labels), return_inverse=True)
        self.classes_ = classes
        x = torch.as_tensor(np.asarray(inputs, dtype=np.float32))
        y_t = torch.as_tensor(y, dtype=torch.int64)
        self.net_ = RetrievalNet(self.backbone, len(classes))
        w = self.weights or LossWeights()
        centre = CentreLoss(len(classes), self.net_.bnneck.num_features)
        params = [p for p in self.net_.parameters() if p.requires_grad]
        optimiser = torch.optim.Adam(params, lr=self.lr, weight_decay=self.weight_decay)
        centre_opt = torch.optim.SGD(centre.parameters(), lr=0.5)
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, self.epochs)
        sampler = PKSampler(y, self.p, self.m, self.seed)
        loop = EpochLoop(self.epochs, progress=self.progress, name="retrieval")
        t_fit = time.perf_counter()

        def train_epoch(epoch: int) -> dict:
            sums = {"ce": 0.0, "triplet": 0.0, "centre": 0.0, "ctl": 0.0, "total": 0.0}
            n_batches = 0
            for rows in loop.bar(sampler, epoch):
                xb, yb = x[rows], y_t[rows]
                if self.augment is not None:
                    xb = self.augment(xb)
                f, _, logits = self.net_(xb)
                parts = {"ce": F.cross_entropy(logits, yb, label_smoothing=w.label_smoothing),
                         "triplet": batch_hard_triplet(f, yb, w.margin) if w.triplet else f.sum() * 0,
                         "centre": centre(f, yb) if w.centre else f.sum() * 0,
                         "ctl": centroid_triplet(f, yb, w.margin, w.ctl_distance) if w.ctl else f.sum() * 0}
                loss = w.ce * parts["ce"] + w.triplet * parts["triplet"] + w.centre * parts["centre"] + \
                    w.ctl * parts["ctl"]
                optimiser.zero_grad(set_to_none=True)
                centre_opt.zero_grad(set_to_none=True)
                loss.backward()
                optimiser.step()
                if w.centre:
                    for p in centre.parameters():     # the centre loss's own learning rate, undoing its weight
                        p.grad.mul_(1.0 / w.centre)
                    centre_opt.step()
                for k, v in parts.items():
                    sums[k] += v.item()
                sums["total"] += loss.item()
                n_batches += 1
            means = {k: v / n_batches for k, v in sums.items()}
            return {"loss": means.pop("total"), **means}

        # the centre loss's centres train with the network: one module for the loop (train / eval mode)
        net = nn.ModuleDict({"net": self.net_, "centre": centre})
        loop.run(self, TrainingState(net, optimiser, scheduler, np.random.default_rng(self.seed)), train_epoch)
        self.report_ = TrainReport(self.history_, time.perf_counter() - t_fit)
        return self

    @property
    def history(self) -> list[dict]:
        """Deprecated: `history_` (one row per epoch; the weighted total loss is its "loss")."""
        import warnings
        warnings.warn("RetrievalTrainer.history is deprecated: use history_ (the old name goes in the next "
                      "release)", DeprecationWarning, stacklevel=2)
        return self.history_

    def embed(self, inputs: np.ndarray, batch_size: int = 512) -> np.ndarray:
        """(n, dim) float32 retrieval features f_bn (eval mode)."""
        self._check_fitted()
        out = []
        self.net_.eval()
        with torch.inference_mode():
            for start in range(0, len(inputs), batch_size):
                xb = torch.as_tensor(np.asarray(inputs[start:start + batch_size], dtype=np.float32))
                out.append(self.net_(xb)[1].numpy())
        return np.concatenate(out) if out else np.zeros((0, self.net_.bnneck.num_features), np.float32)

    # -- persistence (Estimator.save / load, no pickle) -----------------------------------
    def saved_params(self) -> dict:
        """Parameters as JSON: the backbone by its `spec()`, the loss weights as a mapping."""
        spec = getattr(self.backbone, "spec", None)
        if spec is None:
            raise ValueError(f"a RetrievalTrainer with a {type(self.backbone).__name__} backbone cannot be saved: "
                             f"only {sorted(BACKBONES)} backbones have a spec() to rebuild them from")
        params = super().saved_params()
        params["backbone"] = spec()
        params["weights"] = asdict(self.weights) if self.weights is not None else None
        return params

    @classmethod
    def from_state_arrays(cls, params: dict, arrays) -> "RetrievalTrainer":
        params = dict(params)
        params["backbone"] = backbone_from_spec(params["backbone"])
        if params.get("weights") is not None:
            params["weights"] = LossWeights(**params["weights"])
        return super().from_state_arrays(params, arrays)

    def state_arrays(self) -> dict[str, np.ndarray]:
        arrays = super().state_arrays()
        if arrays["classes_"].dtype.kind == "O":
            arrays["classes_"] = arrays["classes_"].astype(str)
        return arrays

    def _save_extra(self) -> dict[str, np.ndarray]:
        arrays = {f"net.{k}": v.detach().cpu().numpy() for k, v in self.net_.state_dict().items()}
        report = getattr(self, "report_", TrainReport())
        arrays["report_json"] = np.array(json.dumps({"history": report.history, "seconds": report.seconds}))
        return arrays

    def _load_extra(self, arrays) -> None:
        names = arrays.files if hasattr(arrays, "files") else list(arrays.keys())
        self.net_ = RetrievalNet(self.backbone, len(self.classes_))
        self.net_.load_state_dict({k[len("net."):]: torch.from_numpy(np.array(arrays[k])) for k in names
                                   if k.startswith("net.")})
        self.net_.eval()
        report = json.loads(str(arrays["report_json"])) if "report_json" in names else {}
        self.report_ = TrainReport(**report)
        self.history_ = self.report_.history

    def plot_losses(self, path) -> None:
        """Loss curves per term, one line each, saved to `path` (PNG/SVG/PDF)."""
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        h = self.history_
        fig, ax = plt.subplots(figsize=(6, 3.5))
        for key in ("loss", "ce", "triplet", "ctl", "centre"):
            values = [r.get(key, r.get("total")) if key == "loss" else r[key] for r in h]
            if any(values):
                ax.plot([r["epoch"] for r in h], values, label="total" if key == "loss" else key)
        ax.set_xlabel("epoch")
        ax.set_ylabel("loss")
        ax.set_yscale("log")
        ax.legend()
        fig.tight_layout()
        fig.savefig(path, dpi=120)
        plt.close(fig)
