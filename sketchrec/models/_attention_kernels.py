"""Numba kernels for TAGNN's target attention over bf16 logits (sketchrec/models/srgnn/functions.py).

Nodes are packed: the T real nodes of a batch's sessions one after another, session b owning
nodes starts[b]:starts[b + 1]. One GEMM gives, for a chunk of C items, the (2T, C) bfloat16
matrix LP = [Q; H] E_c^T: rows 0..T are the attention logits q_t . e_i, rows T..2T the values
h_t . e_i. These kernels take LP as raw bfloat16 bits (uint16), widen them to float32 (a
bfloat16 is the high half of a float32) and do everything else in float32, one session per
thread and one pass over its rows: the softmax over a session's nodes, the weighted sum, and in
backward the gradients of both halves, written back as bfloat16 bits (round to nearest even)
for the two gradient GEMMs, instead of a torch pass (and a dtype copy) per operation.
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, inline="always")
def _widen(bits, out):
    """bfloat16 bits -> float32, into out (a float32 buffer of the same length)."""
    wide = out.view(np.uint32)
    for j in range(bits.shape[0]):
        wide[j] = np.uint32(bits[j]) << np.uint32(16)


@numba.njit(cache=True, fastmath=True, inline="always")
def _exp_nonpositive(x, out, scale):
    """out = exp(x) for x <= 0 (float32), vectorisable: exp(x) = 2^k exp(r), r = x - k ln 2,
    exp(r) by its degree-6 Taylor polynomial (|r| <= ln2 / 2: relative error < 2e-7), 2^k
    built from its exponent bits. numba has no vector exp without Intel's SVML, and libm's
    scalar one does not vectorise. `scale` is a float32 scratch buffer."""
    bits = scale.view(np.int32)
    for j in range(x.shape[0]):
        v = max(x[j], np.float32(-87.0))
        k = np.floor(v * np.float32(1.442695041) + np.float32(0.5))
        r = v - k * np.float32(0.693359375) + k * np.float32(2.12194440e-4)
        out[j] = np.float32(1.0) + r * (np.float32(1.0) + r * (np.float32(0.5) + r * (
            np.float32(1.0 / 6.0) + r * (np.float32(1.0 / 24.0) + r * (np.float32(1.0 / 120.0)
                                                                       + r * np.float32(1.0 / 720.0))))))
        bits[j] = (np.int32(k) + np.int32(127)) << np.int32(23)
    for j in range(x.shape[0]):
        out[j] *= scale[j]


@numba.njit(cache=True, fastmath=True, inline="always")
def _session_softmax(lp, start, end, bias, m, den, row, weights, scale):
    """weights[t - start] = exp(l_t + bias_t - max) for the session's nodes, den = their sum."""
    m[:] = -np.inf
    for t in range(start, end):
        _widen(lp[t], row)
        b = bias[t]
        for j in range(row.shape[0]):
            m[j] = max(m[j], row[j] + b)
    den[:] = 0.0
    for t in range(start, end):
        _widen(lp[t], row)
        b = bias[t]
        for j in range(row.shape[0]):
            row[j] = row[j] + b - m[j]
        w = weights[t - start]
        _exp_nonpositive(row, w, scale)
        for j in range(row.shape[0]):
            den[j] += w[j]


@numba.njit(parallel=True, cache=True, fastmath=True, nogil=True)
def attention_forward(lp, starts, bias, out):
    """out[b, j] = sum_t softmax_t(l_tj + bias_t) p_tj over session b's nodes t.
    lp: (2T, C) uint16 bfloat16 bits; starts: (B + 1,) int64; bias: (T,) float32; out: (B, C) float32."""
    n_nodes, n_items = lp.shape[0] // 2, lp.shape[1]
    for b in numba.prange(starts.shape[0] - 1):
        start, end = starts[b], starts[b + 1]
        m, den = np.empty(n_items, np.float32), np.empty(n_items, np.float32)
        row, scale, acc = np.empty(n_items, np.float32), np.empty(n_items, np.float32), np.zeros(n_items, np.float32)
        weights = np.empty((end - start, n_items), np.float32)
        _session_softmax(lp, start, end, bias, m, den, row, weights, scale)
        for t in range(start, end):
            _widen(lp[n_nodes + t], row)
            w = weights[t - start]
            for j in range(n_items):
                acc[j] += w[j] * row[j]
        for j in range(n_items):
            out[b, j] = acc[j] / den[j]


@numba.njit(cache=True, inline="always")
def _to_bf16_bits(x):
    """float32 -> bfloat16 bits, round to nearest even (inputs are finite)."""
    u = np.uint32(x)
    return np.uint16((u + np.uint32(0x7FFF) + ((u >> np.uint32(16)) & np.uint32(1))) >> np.uint32(16))


@numba.njit(cache=True)
def _narrow(x, out):
    """float32 x -> bfloat16 bits, into out. A function of its own, not inlined: the same loop
    written inline in TableAdam's kernel did not vectorise there."""
    bits = x.view(np.uint32)
    for i in range(x.shape[0]):
        out[i] = _to_bf16_bits(bits[i])


@numba.njit(parallel=True, cache=True, fastmath=True, nogil=True)
def attention_backward(lp, starts, bias, out, grad, grad_lp):
    """d loss / d lp for the loss gradient `grad` (B, C) of `out`: with beta the softmax,
    d/d p_t = beta_t g and d/d l_t = beta_t g (p_t - out). grad_lp: (2T, C) uint16, written as
    bfloat16 bits in lp's layout (logit rows, then value rows)."""
    n_nodes, n_items = lp.shape[0] // 2, lp.shape[1]
    for b in numba.prange(starts.shape[0] - 1):
        start, end = starts[b], starts[b + 1]
        m, den = np.empty(n_items, np.float32), np.empty(n_items, np.float32)
        row, scale = np.empty(n_items, np.float32), np.empty(n_items, np.float32)
        g_l, g_p = np.empty(n_items, np.float32), np.empty(n_items, np.float32)
        weights = np.empty((end - start, n_items), np.float32)
        _session_softmax(lp, start, end, bias, m, den, row, weights, scale)
        o, g = out[b], grad[b]
        for j in range(n_items):
            den[j] = g[j] / den[j]                    # g / den, once per item
        g_l_bits, g_p_bits = g_l.view(np.uint32), g_p.view(np.uint32)
        for t in range(start, end):
            _widen(lp[n_nodes + t], row)
            w = weights[t - start]
            for j in range(n_items):
                gp = w[j] * den[j]
                g_p[j] = gp
                g_l[j] = gp * (row[j] - o[j])
            dst_l, dst_p = grad_lp[t], grad_lp[n_nodes + t]
            for j in range(n_items):
                dst_l[j] = _to_bf16_bits(g_l_bits[j])
                dst_p[j] = _to_bf16_bits(g_p_bits[j])
