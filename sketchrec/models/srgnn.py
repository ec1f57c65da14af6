"""SR-GNN (Wu et al., AAAI 2019) and TAGNN (Yu et al., SIGIR 2020): gated graph networks
over each session's item graph, with training-time adjacency augmentation.

A batch of session prefixes becomes, in one vectorised pass (no Python loop
per session): the unique items of every session (padded to the batch's
largest), the position of every click among them, and the dense (B, n, 2n)
adjacency [A_in | A_out] of consecutive clicks with SR-GNN's normalisation —
incoming edges divided by the node's in-degree, outgoing by its out-degree.
During training an `AdjacencyAugmentation` may re-weight the edges before the
normalisation and blur the result (sketchrec/augment/adjacency.py).

Where the time goes (Diginetica, 43,097 items, batch 100, 2 cores, bf16 training): the
scoring GEMMs against every item, forward and backward, the softmax over every item and the
optimiser's pass over the item table; building the batch graphs is ~1 ms (per-operator
times in docs/benchmarks/srgnn_batch_profile.md, the training path in docs/srgnn.md).
"""

from __future__ import annotations

import logging
import os
import time
from typing import NamedTuple

import numba
import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from sketchrec.augment.adjacency import AdjacencyAugmentation
from sketchrec.models._attention_kernels import attention_backward, attention_forward
from sketchrec.models._loss_kernels import logsumexp_rows, softmax_cross_entropy_rows
from sketchrec.models._table_adam import TableAdam
from sketchrec.data.sessions import Sessions, expand_prefixes
from sketchrec.models._checkpoint import fingerprint, load_checkpoint, save_checkpoint
from sketchrec.models.base import Recommender
from sketchrec.precision import use_bf16
from sketchrec._memory import trim_heap

log = logging.getLogger(__name__)

TRIM_EVERY = 50          # batches between handing glibc's free heap pages back (sketchrec._memory)
# SR-GNN pads a batch's nodes and clicks to a multiple of 8. oneDNN builds a GEMM kernel for every
# new shape, and a batch's shapes follow its largest session (1..50 nodes and clicks), so a fresh
# training run kept meeting new ones: fresh 301-batch bf16 runs took 30.3 ms per batch unpadded
# and 25.5 ms padded (docs/benchmarks/srgnn_batch_profile.md).
# TAGNN does not pad: its evaluation attention costs nodes x items, padding included.
PAD_MULTIPLE = 8


class SessionGraphs(NamedTuple):
    """One batch: node_items (B, n) int64 [pad = n_items], alias (B, L) int64 click -> node
    [pad 0], click_mask (B, L) bool, adjacency (B, n, 2n) float32 [A_in | A_out],
    node_clicks (B, n) float32 clicks per node (0 = padding)."""
    node_items: np.ndarray
    alias: np.ndarray
    click_mask: np.ndarray
    adjacency: np.ndarray
    node_clicks: np.ndarray

    def tensors(self) -> tuple[torch.Tensor, ...]:
        return tuple(torch.from_numpy(a) for a in self)


def session_graphs(histories: Sessions, max_len: int | None = None,
                   augment: AdjacencyAugmentation | None = None,
                   rng: np.random.Generator | None = None, multiple: int = 1) -> SessionGraphs:
    """The batch's session graphs; `augment` (training only) re-weights and blurs them.
    `multiple`: pad the node and click dimensions up to a multiple of it (see PAD_MULTIPLE)."""
    h = histories if max_len is None else histories.tail(max_len)
    n_rows, lengths = len(h), h.lengths
    if np.any(lengths == 0):
        raise ValueError("SR-GNN needs non-empty sessions")
    rows = h.row_of_click()
    key = rows * np.int64(h.n_items + 1) + h.items
    uniq, inverse, clicks = np.unique(key, return_inverse=True, return_counts=True)  # by row, then item
    u_rows = uniq // (h.n_items + 1)
    n_nodes = np.bincount(u_rows, minlength=n_rows)
    first = np.concatenate([[0], np.cumsum(n_nodes)[:-1]])
    local = np.arange(len(uniq)) - first[u_rows]
    width = _round_up(int(n_nodes.max()), multiple)
    node_items = np.full((n_rows, width), h.n_items, dtype=np.int64)
    node_items[u_rows, local] = uniq % (h.n_items + 1)
    node_clicks = np.zeros((n_rows, width), dtype=np.float32)
    node_clicks[u_rows, local] = clicks
    click_node = local[inverse]
    pos = h.position_of_click()
    length = _round_up(int(lengths.max()), multiple)
    alias = np.zeros((n_rows, length), dtype=np.int64)
    alias[rows, pos] = click_node
    mask = np.zeros((n_rows, length), dtype=bool)
    mask[rows, pos] = True
    # consecutive clicks inside a session: edge node(t) -> node(t+1)
    nxt = np.flatnonzero(pos[1:] > 0)             # click i+1 continues click i's session
    e_row, e_src, e_dst = rows[nxt + 1], click_node[nxt], click_node[nxt + 1]
    weight = 1.0
    if augment is not None:
        weight = augment.edge_weights(e_row, h.items[nxt], h.items[nxt + 1], n_rows, rng)
    adj = np.zeros((n_rows, width, width), dtype=np.float32)
    adj[e_row, e_src, e_dst] = weight
    in_deg = adj.sum(axis=1, keepdims=True)       # (B, 1, n): column sums
    out_deg = adj.sum(axis=2, keepdims=True)      # (B, n, 1)
    a_in = np.divide(adj, in_deg, out=np.zeros_like(adj), where=in_deg > 0).transpose(0, 2, 1)
    a_out = np.divide(adj, out_deg, out=np.zeros_like(adj), where=out_deg > 0)
    adjacency = np.concatenate([a_in, a_out], axis=2)
    if augment is not None:
        augment.blur_(adjacency, n_nodes, rng)
    return SessionGraphs(node_items, alias, mask, adjacency, node_clicks)


def _round_up(n: int, multiple: int) -> int:
    return -(-n // multiple) * multiple


class GatedGraphNet(nn.Module):
    """SR-GNN's network: GRU-style propagation `step` times, soft-attention readout
    s = W3 [v_last ; s_g], scores s . v_i. With `target_aware` (TAGNN), every candidate
    item i adds its own session vector sum_t beta_it h_t, beta_i = softmax_t(v_i . W_t h_t)."""

    def __init__(self, n_items: int, hidden: int = 100, step: int = 1, target_aware: bool = False,
                 bf16_attention: bool = False, init_std: float | None = None):
        super().__init__()
        self.hidden, self.step, self.target_aware = hidden, step, target_aware
        self.bf16_attention = bf16_attention      # training only: scoring in eval mode stays float32
        self.n_items = n_items
        self.table_optimiser: TableAdam | None = None       # set by SRGNN.fit while it trains
        self.embedding = nn.Embedding(n_items, hidden)     # no padding row: see node_states
        self.edge_in = nn.Linear(hidden, hidden)
        self.edge_out = nn.Linear(hidden, hidden)
        self.w_ih = nn.Linear(2 * hidden, 3 * hidden)
        self.w_hh = nn.Linear(hidden, 3 * hidden)
        self.att_last = nn.Linear(hidden, hidden)
        self.att_all = nn.Linear(hidden, hidden)
        self.att_q = nn.Linear(hidden, 1, bias=False)
        self.transform = nn.Linear(2 * hidden, hidden)
        if target_aware:
            self.target_att = nn.Linear(hidden, hidden, bias=False)
        # init_std None: U(-1/sqrt(hidden), 1/sqrt(hidden)), as the published SR-GNN code;
        # else N(0, init_std), as the SR-GNN paper and the thesis's appendix A.2 state (0.1)
        std = 1.0 / np.sqrt(hidden)
        for p in self.parameters():
            if init_std is None:
                nn.init.uniform_(p, -std, std)
            else:
                nn.init.normal_(p, 0.0, init_std)

    def gnn_cell(self, adj, h):
        n = h.shape[1]
        msg = torch.cat([adj[:, :, :n] @ self.edge_in(h), adj[:, :, n:] @ self.edge_out(h)], dim=2)
        gi, gh = self.w_ih(msg), self.w_hh(h)
        i_r, i_z, i_n = gi.chunk(3, dim=2)
        h_r, h_z, h_n = gh.chunk(3, dim=2)
        reset, update = torch.sigmoid(i_r + h_r), torch.sigmoid(i_z + h_z)
        candidate = torch.tanh(i_n + reset * h_n)
        return candidate + update * (h - candidate)

    def node_states(self, node_items, adj, rows=None):
        """(B, n, d) node states after propagation; `rows`: the nodes' embeddings, if looked up already."""
        # Padded nodes (id n_items) start as exact zeros. The table has no padding row on purpose:
        # scoring against `weight[:-1]` made autograd zero-fill and copy a second (N, d) gradient
        # every batch (~8 ms of 46), and a padding row kept in the table decays under Adam's
        # weight decay into denormal floats that make every GNN matmul ~5x slower on x86.
        real = node_items < self.n_items
        if rows is None:
            rows = self.embedding(torch.where(real, node_items, 0))
        h = rows * real.unsqueeze(2)
        for _ in range(self.step):
            h = self.gnn_cell(adj, h)
        return h

    def session_vectors(self, node_items, alias, mask, adj, node_clicks=None, h=None):
        """(B, d) s_h = W3 [v_last ; s_g]."""
        if h is None:
            h = self.node_states(node_items, adj)
        seq = torch.gather(h, 1, alias.unsqueeze(2).expand(-1, -1, h.shape[2]))      # (B, L, d)
        last_idx = mask.sum(1) - 1
        last = seq[torch.arange(len(seq)), last_idx]                                  # (B, d)
        alpha = self.att_q(torch.sigmoid(self.att_last(last).unsqueeze(1) + self.att_all(seq)))
        global_ = (alpha * seq * mask.unsqueeze(2)).sum(1)
        return self.transform(torch.cat([last, global_], dim=1))

    def forward(self, node_items, alias, mask, adj, node_clicks):
        items, rows = self.embedding.weight, None                                     # (N, d)
        if self.training and torch.is_grad_enabled():       # one gradient for the table's two uses
            dtype = torch.get_autocast_dtype("cpu") if torch.is_autocast_enabled("cpu") else items.dtype
            items, rows = ItemTable.apply(items, torch.where(node_items < self.n_items, node_items, 0), dtype,
                                          self.table_optimiser)
        h = self.node_states(node_items, adj, rows)
        s = self.session_vectors(node_items, alias, mask, adj, h=h)
        scores = s @ items.T                                                          # (B, N)
        if self.target_aware:
            # softmax over a session's clicks = softmax over its nodes with log(clicks) added
            bias = torch.where(node_clicks > 0, torch.log(node_clicks.clamp(min=1)),
                               torch.full_like(node_clicks, -torch.inf))
            if self.bf16_attention and self.training and torch.is_grad_enabled():
                real = node_clicks > 0                                               # packed nodes
                starts = torch.cat([torch.zeros(1, dtype=torch.int64), real.sum(1).cumsum(0)])
                scores = scores + PackedTargetAttention.apply(self.target_att(h)[real], h[real], items,
                                                              bias[real], starts)
            else:
                scores = scores + TargetAttention.apply(self.target_att(h), h, items, bias,
                                                        torch.is_autocast_enabled("cpu"))
        return scores


class ItemTable(torch.autograd.Function):
    """The item table's two uses in training as one op: the table in `dtype` (what every
    session is scored against) and its rows `index` (the graph nodes' first states), with one
    gradient: the scoring GEMM's dense (N, d) gradient with the nodes' rows index-added to it.
    As two autograd uses the lookup's gradient is a second (N, d) tensor, zero-filled and then
    added to the first: two more passes over the table every batch.

    With a `TableAdam` and dtype bfloat16 the table is the optimiser's bfloat16 copy (no cast
    per batch), and backward hands the bfloat16 gradient and the rows' gradients to the
    optimiser, which adds them inside its step (the table's .grad stays None)."""

    @staticmethod
    def forward(ctx, weight, index, dtype, optimiser: TableAdam | None = None):
        ctx.save_for_backward(index)
        ctx.shape = weight.shape
        ctx.optimiser = optimiser if dtype == torch.bfloat16 else None
        if ctx.optimiser is not None:            # its bf16 copy, refreshed by its last step
            copy = optimiser.table_copy()
            table = copy.view_as(copy)
        else:
            table = weight.view_as(weight) if dtype == weight.dtype else weight.to(dtype)
        return table, weight[index]

    @staticmethod
    def backward(ctx, grad_table, grad_rows):
        index, = ctx.saved_tensors
        if ctx.optimiser is not None:           # the bf16 gradient goes to the optimiser as it is
            ctx.optimiser.accept(grad_table, index, grad_rows)
            ctx.optimiser = None
            return None, None, None, None
        if grad_table is None:
            grad = torch.zeros(ctx.shape, dtype=torch.float32)
        else:                               # a fresh float32 copy, or a copy of autograd's float32 buffer
            grad = grad_table.to(torch.float32, copy=True)
        if grad_rows is not None:
            grad.index_add_(0, index.reshape(-1), grad_rows.reshape(-1, ctx.shape[1]).to(torch.float32))
        return grad, None, None, None


class SoftmaxCrossEntropy(torch.autograd.Function):
    """Mean cross-entropy of (B, N) bfloat16 logits against `targets`, the softmax in float32
    by numba kernels (sketchrec/models/_loss_kernels.py). When the logits need a gradient the
    forward kernel writes it in the same pass over each row, and backward only scales it: one
    widening and one exp per logit in all. Equals F.cross_entropy(logits.float(), targets) up
    to float32 rounding; the gradient is bfloat16, as bf16 autocast's would be after its cast."""

    @staticmethod
    def forward(ctx, logits, targets):
        logits, targets = logits.contiguous(), targets.contiguous()
        if len(targets) and (int(targets.min()) < 0 or int(targets.max()) >= logits.shape[1]):
            raise IndexError(f"targets outside 0..{logits.shape[1] - 1}")    # the kernel would write past the row
        lse = torch.empty(len(logits), dtype=torch.float32)
        if ctx.needs_input_grad[0]:
            weight = torch.full((len(logits),), 1.0 / len(logits), dtype=torch.float32)
            grad = torch.empty(logits.shape, dtype=torch.int16)
            softmax_cross_entropy_rows(_bits(logits), targets.numpy(), weight.numpy(), lse.numpy(), _bits(grad))
            ctx.save_for_backward(grad.view(torch.bfloat16))
        else:
            logsumexp_rows(_bits(logits), lse.numpy())
        picked = logits.gather(1, targets.unsqueeze(1)).squeeze(1).float()
        return (lse - picked).mean()

    @staticmethod
    def backward(ctx, grad_loss):
        grad, = ctx.saved_tensors                     # d mean loss / d logits
        return (grad if float(grad_loss) == 1.0 else (grad.float() * grad_loss).to(grad.dtype)), None


def softmax_cross_entropy(scores: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy over all items: the fused kernels for bfloat16 scores, torch's otherwise."""
    if scores.dtype == torch.bfloat16:
        return SoftmaxCrossEntropy.apply(scores, targets)
    return nn.functional.cross_entropy(scores.float(), targets)


class TargetAttention(torch.autograd.Function):
    """TAGNN's target-aware term out[b, i] = sum_t beta_bti (h_bt . e_i) with
    beta_b.i = softmax_t(q_bt . e_i + bias_bt), computed one chunk of items at a time.

    Plain autograd materialises several (B, n, N) tensors (logits, beta, h @ E^T, their product,
    and as many gradients), ~70 MB each for a batch of 100 four-node sessions against 43k items,
    and streams each through memory. Here a chunk of items goes through one GEMM of [q; h]
    against it, the softmax and the weighted sum while it is in cache; backward recomputes the
    chunk (one more GEMM) instead of storing it, with d out / d p_t = beta_t and
    d out / d l_t = beta_t (p_t - out).

    With `bf16` (or under CPU autocast) the GEMMs take bfloat16 operands and give bfloat16
    logits; the softmax, the sums, the gradients' accumulation and all outputs stay float32.
    Its chunks are larger than the float32 ones: the bf16 GEMM kernel needs wide operands
    (per-batch times in docs/benchmarks/tagnn_batch_speed.md)."""

    CHUNK_ELEMENTS = 1 << 18            # float32: (B, 2n, chunk) floats per chunk, 1 MB, in L2
    CHUNK_ELEMENTS_BF16 = 1 << 22

    @staticmethod
    def _chunks(rows: int, n_items: int, dtype: torch.dtype = torch.float32):
        size = TargetAttention.CHUNK_ELEMENTS_BF16 if dtype == torch.bfloat16 else TargetAttention.CHUNK_ELEMENTS
        step = max(256, size // max(rows, 1))
        return [(s, min(s + step, n_items)) for s in range(0, n_items, step)]

    @staticmethod
    def _beta_p(x, items, bias, n):
        lp = (x @ items.T).float()                                        # (B, 2n, c)
        beta = torch.softmax(lp[:, :n] + bias.unsqueeze(2), dim=1)
        return beta, lp[:, n:]

    @staticmethod
    @torch.amp.custom_fwd(device_type="cpu")
    def forward(ctx, q, h, items, bias, bf16: bool = False):
        dtype = torch.bfloat16 if bf16 or torch.is_autocast_enabled("cpu") else torch.float32
        with torch.autocast("cpu", enabled=False):
            x, n = torch.cat([q, h], dim=1).to(dtype), h.shape[1]
            items, bias = items.to(dtype), bias.float()
            out = torch.empty(len(x), len(items), dtype=torch.float32)
            for s, e in TargetAttention._chunks(x.shape[0] * x.shape[1], len(items), dtype):
                beta, p = TargetAttention._beta_p(x, items[s:e], bias, n)
                out[:, s:e] = (beta * p).sum(1)
        ctx.save_for_backward(x, items, bias, out)
        return out

    @staticmethod
    @torch.amp.custom_bwd(device_type="cpu")
    def backward(ctx, grad):
        x, items, bias, out = ctx.saved_tensors
        n, d = x.shape[1] // 2, x.shape[2]
        grad_x = torch.zeros(x.shape, dtype=torch.float32)
        grad_items = torch.empty(items.shape, dtype=torch.float32)
        flat_x = x.reshape(-1, d)
        for s, e in TargetAttention._chunks(x.shape[0] * x.shape[1], len(items), x.dtype):
            beta, p = TargetAttention._beta_p(x, items[s:e], bias, n)
            grad_p = beta * grad[:, s:e].unsqueeze(1)                     # (B, n, c)
            grad_l = grad_p * (p - out[:, s:e].unsqueeze(1))
            grad_lp = torch.cat([grad_l, grad_p], dim=1).to(x.dtype)      # (B, 2n, c)
            grad_x += grad_lp @ items[s:e]
            grad_items[s:e] = grad_lp.reshape(-1, e - s).T @ flat_x
        return grad_x[:, :n], grad_x[:, n:], grad_items, None, None


class PackedTargetAttention(torch.autograd.Function):
    """TargetAttention's training path with bfloat16 GEMM operands over packed nodes.

    q, h: (T, d) the real nodes of all sessions one after another (no padding), session b's
    being starts[b]:starts[b + 1]; bias: (T,) log clicks per node. Per chunk of items one GEMM
    of [q; h] gives bfloat16 logits and values; a numba kernel does the softmax over each
    session's nodes and the weighted sum in float32 in one pass (sketchrec/models/_attention_kernels.py),
    and in backward writes both halves' gradients as bfloat16 for the two gradient GEMMs.
    The chunks' logits are kept for backward (2 bytes per node row and item) unless that exceeds
    KEEP_BYTES; then backward recomputes them. Output: TargetAttention with bf16=True's up to
    float32 rounding; gradients: up to the bf16 rounding of the gradient GEMMs' outputs."""

    KEEP_BYTES = 1 << 30

    @staticmethod
    def forward(ctx, q, h, items, bias, starts):
        x = torch.cat([q, h]).to(torch.bfloat16)
        items, bias_np, starts_np = items.to(torch.bfloat16), bias.float().numpy(), starts.numpy()
        out = torch.empty(len(starts) - 1, len(items), dtype=torch.float32)
        out_np = out.numpy()
        chunks = TargetAttention._chunks(len(x), len(items), torch.bfloat16)
        # kept logits live in one buffer (one large block, not a dozen ~8 MB ones held until
        # backward), which eases glibc's heap fragmentation; `fit` trims the heap too
        keep = 2 * len(x) * len(items) <= PackedTargetAttention.KEEP_BYTES
        kept = torch.empty(len(x) * len(items), dtype=torch.bfloat16) if keep else None
        for s, e in chunks:
            lp = x @ items[s:e].T if kept is None else torch.mm(
                x, items[s:e].T, out=kept[len(x) * s:len(x) * e].view(len(x), e - s))
            attention_forward(_bits(lp), starts_np, bias_np, out_np[:, s:e])
        ctx.kept = kept
        ctx.save_for_backward(x, items, bias, starts, out)
        return out

    @staticmethod
    def backward(ctx, grad):
        x, items, bias, starts, out = ctx.saved_tensors
        grad_np, out_np = grad.float().contiguous().numpy(), out.numpy()
        bias_np, starts_np = bias.float().numpy(), starts.numpy()
        grad_x = torch.zeros(x.shape, dtype=torch.float32)
        grad_items = torch.empty(items.shape, dtype=torch.float32)
        kept, ctx.kept = ctx.kept, None
        for s, e in TargetAttention._chunks(len(x), len(items), torch.bfloat16):
            lp = x @ items[s:e].T if kept is None else kept[len(x) * s:len(x) * e].view(len(x), e - s)
            grad_lp = torch.empty(lp.shape, dtype=torch.int16)
            attention_backward(_bits(lp), starts_np, bias_np, out_np[:, s:e], grad_np[:, s:e], _bits(grad_lp))
            grad_lp = grad_lp.view(torch.bfloat16)
            grad_x += grad_lp @ items[s:e]
            grad_items[s:e] = grad_lp.T @ x
        n = len(x) // 2
        return grad_x[:n], grad_x[n:], grad_items, None, None


def _bits(t: torch.Tensor) -> np.ndarray:
    """A bfloat16 / int16 tensor's memory as a uint16 numpy array (no copy)."""
    return t.view(torch.int16).numpy().view(np.uint16)


class SRGNN(Recommender):
    """SR-GNN. Parameters: hidden, step, epochs (at most), batch_size, lr, lr_decay_every
    (epochs), lr_decay, l2 (Adam weight decay), max_len (clicks kept per prefix), patience
    (epochs without a better validation score before stopping), stop_on (the validation score
    that keeps the best epoch and stops early: "mrr" = MRR@20, "loss" = mean cross-entropy over
    all items), init_std (None: weights ~ U(±1/sqrt(hidden)); a float: N(0, init_std)),
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

    def fit(self, train: Sessions, validation: tuple[Sessions, np.ndarray] | None = None,
            augmentation: AdjacencyAugmentation | None = None, checkpoint: str | None = None,
            callback=None, init_from: "SRGNN | None" = None, last_pair_only: bool = False) -> "SRGNN":
        """Train on every prefix -> next item of `train`.

        validation : optional (prefixes, targets): MRR@20 and the loss on them after every
            epoch; the best epoch's weights (by `stop_on`) are kept and training stops after
            `patience` epochs without improvement.
        augmentation : optional training-time adjacency augmentation (evaluation never uses it).
        checkpoint : optional .npz path written atomically after every epoch; an existing one
            for the same settings and rows is resumed (a killed run loses at most one epoch).
        callback : optional callable(epoch, model, history_row).
        init_from : optional fitted model whose weights start the training (fine-tuning).
        last_pair_only : train on each row's last click given the clicks before it only
            (rows are already (prefix, target) pairs), instead of on every prefix.
        """
        if len(train) == 0:
            raise ValueError("SR-GNN needs at least one training session")
        if self.stop_on not in ("mrr", "loss"):
            raise ValueError(f"stop_on must be 'mrr' or 'loss', got {self.stop_on!r}")
        torch.manual_seed(self.seed)
        torch.set_num_threads(self.threads or os.cpu_count() or 1)
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
        targets_t = torch.from_numpy(targets.astype(np.int64))
        if len(targets) == 0:
            raise ValueError("SR-GNN needs sessions of two or more clicks")
        sizes = _node_counts(prefixes) if self.target_aware else None
        rows_id = fingerprint(train) + ("" if augmentation is None else f":{augmentation.name}")
        self.history_, best, best_state, first_epoch, stale = [], -np.inf, None, 0, 0
        if checkpoint is not None and os.path.exists(checkpoint):
            first_epoch, self.history_, best, best_state, extra = load_checkpoint(
                checkpoint, params=self.get_params(), fingerprint=rows_id, net=self.net_,
                optimiser=optimiser, scheduler=scheduler, rng=rng)
            stale = extra.get("stale", 0)
            self.best_epoch_ = extra.get("best_epoch")
            log.info("%s: resumed from %s after epoch %d", type(self).__name__, checkpoint, first_epoch)
        name = type(self).__name__.lower()
        self.net_.table_optimiser = optimiser       # bf16 training scores with its table copy
        for epoch in range(first_epoch, self.epochs):
            if validation is not None and stale >= self.patience:
                break
            self.net_.train()
            t_graphs = t_net = t_opt = total = 0.0
            t_epoch = time.perf_counter()
            batches = _batch_order(rng, len(targets), self.batch_size, sizes)
            bar = tqdm(batches, desc=f"{name} epoch {epoch + 1}", unit="batch", leave=False,
                       disable=not self.progress)
            for i, rows in enumerate(bar):
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
            scheduler.step()
            row = {"epoch": epoch + 1, "loss": total / len(targets), "seconds": time.perf_counter() - t_epoch,
                   "graphs_s": t_graphs, "forward_backward_s": t_net, "optimiser_s": t_opt}
            if validation is not None:
                self.net_.eval()
                row.update(self._validate(*validation))
                score = -row["valid_loss"] if self.stop_on == "loss" else row["valid_MRR@20"]   # higher is better
                if score > best:
                    best, stale, self.best_epoch_ = score, 0, epoch + 1
                    best_state = {k: v.detach().clone() for k, v in self.net_.state_dict().items()}
                else:
                    stale += 1
            if callback is not None:            # before the checkpoint, so what it adds to `row` is kept
                callback(epoch + 1, self, row)
            self.history_.append(row)
            log.info("%s epoch %s", type(self).__name__, row)
            if checkpoint is not None:
                save_checkpoint(checkpoint, params=self.get_params(), fingerprint=rows_id, epoch=epoch + 1,
                                net=self.net_, optimiser=optimiser, scheduler=scheduler, rng=rng,
                                history=self.history_, best=best, best_state=best_state,
                                extra={"stale": stale, "best_epoch": getattr(self, "best_epoch_", None)})
        self.net_.table_optimiser = None
        if best_state is not None:
            self.net_.load_state_dict(best_state)
        self.net_.eval()
        return self

    def _validate(self, prefixes: Sessions, targets: np.ndarray, batch_size: int = 1000) -> dict[str, float]:
        """valid_HR@K / MRR@K / NDCG@K (K = 10, 20; ranks as `evaluate_next_item` gives them) and
        valid_loss, the mean cross-entropy over all items, from one scoring pass."""
        from sketchrec.eval.metrics import session_metrics, target_ranks
        ranks, loss = np.empty(len(targets), dtype=np.int64), 0.0
        for start in range(0, len(targets), batch_size):
            rows = np.arange(start, min(start + batch_size, len(targets)))
            scores = self.score(prefixes.take(rows))
            ranks[rows] = target_ranks(scores, targets[rows])
            loss += float(nn.functional.cross_entropy(torch.from_numpy(scores),
                                                      torch.from_numpy(targets[rows].astype(np.int64)),
                                                      reduction="sum"))
        metrics = session_metrics(ranks, ks=(10, 20))
        return {**{f"valid_{k}": v for k, v in metrics.items()}, "valid_loss": loss / max(len(targets), 1)}

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


def _node_counts(prefixes: Sessions) -> np.ndarray:
    """(n_rows,) distinct items per row."""
    key = prefixes.row_of_click() * np.int64(prefixes.n_items) + prefixes.items
    return np.bincount(np.unique(key) // prefixes.n_items, minlength=len(prefixes))


def _batch_order(rng: np.random.Generator, n: int, batch_size: int, sizes: np.ndarray | None):
    """Shuffled batches of row indices. With `sizes`, rows are shuffled, sorted by size within
    windows of 50 batches and cut there, and the batches shuffled: little padding, still random."""
    order = rng.permutation(n)
    if sizes is not None:
        window = 50 * batch_size
        win = np.arange(n) // window
        order = order[np.lexsort((sizes[order], win))]
    batches = [order[s:s + batch_size] for s in range(0, n, batch_size)]
    if sizes is not None:
        batches = [batches[i] for i in rng.permutation(len(batches))]
    return batches
