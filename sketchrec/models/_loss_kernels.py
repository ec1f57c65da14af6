"""Numba kernels for softmax cross-entropy over bfloat16 logits (sketchrec/models/srgnn/functions.py).

SR-GNN's loss is a softmax over every item: under bf16 autocast the scoring GEMM gives a
(B, N) bfloat16 matrix, and torch then widens it to float32, takes log_softmax (three passes),
and in backward computes softmax - onehot in float32 and narrows it back to bfloat16 for the
two gradient GEMMs: six passes over B x N floats around three GEMMs that bf16 hardware does
quickly (docs/benchmarks/srgnn_batch_profile.md has the per-operator times). Here one thread
per row widens the row into a float32 buffer that stays in L2 (43k items: 170 KB) and, in the
same visit, gives the row's log-sum-exp and writes its gradient g = w (softmax - onehot)
straight back as bfloat16 bits: each logit is widened and exponentiated once. Training always
differentiates the loss it computes, so the gradient is worked out with it, not in backward.
"""

from __future__ import annotations

import numba
import numpy as np

from sketchrec.models._attention_kernels import _exp_nonpositive, _narrow, _widen


@numba.njit(cache=True, inline="always")
def _max_bits(bits):
    """The largest of a row of bfloat16 bits, as float32. Mapping each to an unsigned key that
    orders like the floats (positives: set the sign bit; negatives: flip all bits) makes it an
    integer max, which vectorises 16 lanes wide; a float `max` loop does not vectorise (NaN
    rules)."""
    best = np.uint16(0)
    for j in range(bits.shape[0]):
        u = bits[j]
        best = max(best, np.uint16(u ^ (np.uint16(0xFFFF) if u >= np.uint16(0x8000) else np.uint16(0x8000))))
    top = best ^ (np.uint16(0x8000) if best >= np.uint16(0x8000) else np.uint16(0xFFFF))
    out = np.empty(1, np.uint32)
    out[0] = np.uint32(top) << np.uint32(16)
    return out.view(np.float32)[0]


@numba.njit(parallel=True, cache=True, fastmath=True, nogil=True)
def logsumexp_rows(logits, lse):
    """lse[b] = log sum_j exp(logits[b, j]); logits: (B, N) uint16 bfloat16 bits."""
    n = logits.shape[1]
    for b in numba.prange(logits.shape[0]):
        row, e, scale = np.empty(n, np.float32), np.empty(n, np.float32), np.empty(n, np.float32)
        m = _max_bits(logits[b])
        _widen(logits[b], row)
        for j in range(n):
            row[j] -= m
        _exp_nonpositive(row, e, scale)
        total = np.float32(0.0)
        for j in range(n):
            total += e[j]
        lse[b] = m + np.log(total)


@numba.njit(parallel=True, cache=True, fastmath=True, nogil=True)
def softmax_cross_entropy_rows(logits, targets, weight, lse, grad):
    """lse[b] = log sum_j exp(logits[b, j]) and grad[b] = weight[b] (softmax(logits[b]) -
    onehot(targets[b])) as bfloat16 bits, one visit per row.
    logits, grad: (B, N) uint16; targets: (B,) int64; weight, lse: (B,) float32."""
    n = logits.shape[1]
    for b in numba.prange(logits.shape[0]):
        row, p, scale = np.empty(n, np.float32), np.empty(n, np.float32), np.empty(n, np.float32)
        m = _max_bits(logits[b])
        _widen(logits[b], row)
        for j in range(n):
            row[j] -= m
        _exp_nonpositive(row, p, scale)
        total = np.float32(0.0)
        for j in range(n):
            total += p[j]
        lse[b] = m + np.log(total)
        w = weight[b] / total
        for j in range(n):
            p[j] *= w
        p[targets[b]] -= weight[b]
        _narrow(p, grad[b])
