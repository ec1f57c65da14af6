"""SR-GNN / TAGNN's custom autograd Functions, each one op where plain autograd would make
several passes over an (N, d) or (B, n, N) tensor:

- `ItemTable`: the item table's two training uses (scoring, node lookup) with one gradient;
- `SoftmaxCrossEntropy`: cross-entropy over all items of bfloat16 logits, the softmax by numba
  kernels (sketchrec/models/_loss_kernels.py);
- `TargetAttention`: TAGNN's target-aware attention, one chunk of items at a time;
- `PackedTargetAttention`: its bfloat16 training path over packed nodes (numba kernels in
  sketchrec/models/_attention_kernels.py).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from sketchrec.models._attention_kernels import attention_backward, attention_forward
from sketchrec.models._loss_kernels import logsumexp_rows, softmax_cross_entropy_rows
from sketchrec.models._table_adam import TableAdam


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
