"""Numba kernels for softmax cross-entropy over bfloat16 logits (sketchrec/models/srgnn.py).

SR-GNN's loss is a softmax over every item: under bf16 autocast the scoring GEMM gives a
(B, N) bfloat16 matrix, and torch then widens it to float32, takes log_softmax (three passes),
and in backward computes softmax - onehot in float32 and narrows it back to bfloat16 for the
two gradient GEMMs: six passes over B x N floats around three GEMMs that bf16 hardware does
quickly (docs/benchmarks/srgnn_batch_profile.md has the per-operator times). Here one thread per row widens the row into a float32 buffer that stays in L2 (43k items:
170 KB), and forward gives the row's log-sum-exp; backward writes g (softmax - onehot)
straight back as bfloat16 bits.
"""

from __future__ import annotations

import numba
import numpy as np

from sketchrec.models._attention_kernels import _exp_nonpositive, _to_bf16_bits, _widen


@numba.njit(cache=True, fastmath=True, inline="always")
def _max(row):
    """max(row) in 16 lanes: a plain `m = max(m, x)` reduction loop does not vectorise."""
    lanes = np.full(16, -np.inf, dtype=np.float32)
    n16 = row.shape[0] // 16 * 16
    for j in range(0, n16, 16):
        for k in range(16):
            v = row[j + k]
            lanes[k] = v if v > lanes[k] else lanes[k]
    m = lanes.max()
    for j in range(n16, row.shape[0]):
        m = max(m, row[j])
    return m


@numba.njit(parallel=True, cache=True, fastmath=True, nogil=True)
def logsumexp_rows(logits, lse):
    """lse[b] = log sum_j exp(logits[b, j]); logits: (B, N) uint16 bfloat16 bits."""
    n = logits.shape[1]
    for b in numba.prange(logits.shape[0]):
        row, e, scale = np.empty(n, np.float32), np.empty(n, np.float32), np.empty(n, np.float32)
        _widen(logits[b], row)
        m = _max(row)
        for j in range(n):
            row[j] -= m
        _exp_nonpositive(row, e, scale)
        total = np.float32(0.0)
        for j in range(n):
            total += e[j]
        lse[b] = m + np.log(total)


@numba.njit(parallel=True, cache=True, fastmath=True, nogil=True)
def softmax_minus_onehot(logits, lse, targets, weight, grad):
    """grad[b] = weight[b] (softmax(logits[b]) - onehot(targets[b])) as bfloat16 bits.
    logits, grad: (B, N) uint16; lse, weight: (B,) float32; targets: (B,) int64."""
    n = logits.shape[1]
    for b in numba.prange(logits.shape[0]):
        row, p, scale = np.empty(n, np.float32), np.empty(n, np.float32), np.empty(n, np.float32)
        _widen(logits[b], row)
        shift = lse[b]
        for j in range(n):
            row[j] = min(row[j] - shift, np.float32(0.0))     # log p <= 0 up to rounding
        _exp_nonpositive(row, p, scale)
        p[targets[b]] -= np.float32(1.0)
        w = weight[b]
        bits, dst = p.view(np.uint32), grad[b]
        for j in range(n):
            p[j] *= w
        for j in range(n):
            dst[j] = _to_bf16_bits(bits[j])
