"""Adam whose step over the item table is one numba pass that also writes the table's bfloat16 copy.

Under bf16 autocast a training batch of SR-GNN makes three passes over the (N, d) float32
item table and its gradient: autocast casts the table to bfloat16 for the scoring GEMM, the
GEMM's bfloat16 gradient is widened into a float32 one (the lookup's rows are index-added to
it), and Adam reads parameter, gradient and both moments and writes three back. Here the
table's step reads the bfloat16 gradient as it is, adds the looked-up rows' gradients where
they belong, updates parameter and moments with torch's Adam arithmetic (L2 weight decay added
to the gradient, bias-corrected moments) and writes the bfloat16 copy the next forward scores
with: one pass over the table instead of three. Everything else is torch's fused Adam.

The table's moments live in the optimiser's state under torch's names (`exp_avg`,
`exp_avg_sq`, `step`), so its state_dict and the training checkpoints are torch Adam's.
"""

from __future__ import annotations

import numba
import numpy as np
import torch

from sketchrec.models._attention_kernels import _narrow, _widen


ROWS_PER_TASK = 256


@numba.njit(cache=True, fastmath=True, error_model="numpy")
def _adam(param, exp_avg, exp_avg_sq, grad, step_size, beta1, beta2, eps, weight_decay, bias_correction2_sqrt):
    """torch's Adam arithmetic, in place. error_model="numpy": numba's default raises on a
    division by zero, and that branch keeps LLVM from vectorising the loop."""
    one = np.float32(1.0)
    for i in range(param.shape[0]):
        g = grad[i] + weight_decay * param[i]
        m = exp_avg[i] + (one - beta1) * (g - exp_avg[i])
        v = beta2 * exp_avg_sq[i] + (one - beta2) * g * g
        exp_avg[i] = m
        exp_avg_sq[i] = v
        param[i] -= step_size * m / (np.sqrt(v) / bias_correction2_sqrt + eps)


@numba.njit(parallel=True, cache=True, fastmath=True, error_model="numpy", nogil=True)
def _adam_rows(param, exp_avg, exp_avg_sq, grad_bits, slot, extra, copy_bits, width,
               lr, beta1, beta2, eps, weight_decay, bias_correction1, bias_correction2_sqrt):
    """One Adam step over all rows of a (N, width) float32 table, given flat: param, exp_avg,
    exp_avg_sq in place; gradient = widen(grad_bits) (bfloat16 bits) plus, for row r with
    slot[r] >= 0, extra[slot[r]]; copy_bits = bfloat16(param) after the step."""
    n_rows = slot.shape[0]
    for task in numba.prange((n_rows + ROWS_PER_TASK - 1) // ROWS_PER_TASK):
        lo = task * ROWS_PER_TASK * width
        hi = min(n_rows, (task + 1) * ROWS_PER_TASK) * width
        grad = np.empty(hi - lo, np.float32)
        _widen(grad_bits[lo:hi], grad)
        for r in range(lo // width, hi // width):
            k = slot[r]
            if k >= 0:
                for j in range(width):
                    grad[r * width - lo + j] += extra[k, j]
        _adam(param[lo:hi], exp_avg[lo:hi], exp_avg_sq[lo:hi], grad, lr / bias_correction1,
              beta1, beta2, eps, weight_decay, bias_correction2_sqrt)
        _narrow(param[lo:hi], copy_bits[lo:hi])


class TableAdam(torch.optim.Adam):
    """torch's fused Adam for every parameter, except that a bfloat16 gradient of `table`
    handed over by `accept` (ItemTable's backward under bf16 training) is stepped by
    `_adam_rows`, which also refreshes the bfloat16 copy `table_copy()` returns. A float32
    gradient in `table.grad` goes through torch's Adam like any other."""

    def __init__(self, params, table: torch.nn.Parameter, lr: float = 1e-3, weight_decay: float = 0.0,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, fused=True)
        self.table = table
        self._table_group()                                  # refuses a table that is not optimised here
        self._copy, self._copy_version, self._pending = None, None, None
        self._slot = np.full(len(table), -1, dtype=np.int32)

    def _table_group(self) -> dict:
        """The table's parameter group, looked up at every step: `load_state_dict` (a resumed
        checkpoint) replaces the group dicts, and the scheduler then sets the lr of the new ones."""
        groups = [g for g in self.param_groups if any(p is self.table for p in g["params"])]
        if len(groups) != 1:
            raise ValueError("the table must be one of the optimised parameters")
        return groups[0]

    def table_copy(self) -> torch.Tensor:
        """The table in bfloat16, current with its float32 values (recast only if they were
        changed by anything but this optimiser, e.g. load_state_dict)."""
        if self._copy is None or self._copy_version != self.table._version:
            self._copy = self.table.detach().to(torch.bfloat16)
            self._copy_version = self.table._version
        return self._copy

    def accept(self, grad_table: torch.Tensor, index: torch.Tensor, grad_rows: torch.Tensor | None) -> None:
        """The table's gradient for the next step: a dense bfloat16 (N, d) one plus `grad_rows`
        (float32, index.shape + (d,)) added at rows `index`."""
        if self._pending is not None:
            raise RuntimeError("TableAdam: a second table gradient before step(); it does not accumulate")
        if grad_table is None:                              # only the looked-up rows had a gradient
            grad_table = torch.zeros(self.table.shape, dtype=torch.bfloat16)
        if grad_table.dtype != torch.bfloat16 or grad_table.shape != self.table.shape:
            raise TypeError(f"TableAdam takes a bfloat16 {tuple(self.table.shape)} table gradient, "
                            f"not {grad_table.dtype} {tuple(grad_table.shape)}")
        self._pending = (grad_table, index, grad_rows)

    def zero_grad(self, set_to_none: bool = True) -> None:
        super().zero_grad(set_to_none)
        self._pending = None

    @torch.no_grad()
    def step(self, closure=None):
        loss = super().step(closure)
        if self._pending is not None:
            pending, self._pending = self._pending, None
            self._table_step(*pending)
        return loss

    def _table_step(self, grad_table, index, grad_rows) -> None:
        group, table = self._table_group(), self.table
        state = self.state[table]
        if not state:
            state["step"] = torch.tensor(0.0, dtype=torch.float32)
            state["exp_avg"] = torch.zeros_like(table, memory_format=torch.preserve_format)
            state["exp_avg_sq"] = torch.zeros_like(table, memory_format=torch.preserve_format)
        state["step"] += 1
        step = float(state["step"])
        beta1, beta2 = group["betas"]
        width = table.shape[1]
        if grad_rows is not None:
            uniq, inverse = torch.unique(index.reshape(-1), return_inverse=True)
            extra = torch.zeros(len(uniq), width, dtype=torch.float32).index_add_(
                0, inverse, grad_rows.reshape(-1, width).float())
            uniq = uniq.numpy()
            self._slot[uniq] = np.arange(len(uniq), dtype=np.int32)
        else:
            uniq, extra = None, torch.zeros(0, width, dtype=torch.float32)
        if self._copy is None or self._copy_version != table._version:
            self._copy = torch.empty(table.shape, dtype=torch.bfloat16)
        try:
            _adam_rows(_flat(table), _flat(state["exp_avg"]), _flat(state["exp_avg_sq"]),
                       _flat(grad_table.contiguous().view(torch.int16)).view(np.uint16), self._slot,
                       extra.numpy(), _flat(self._copy.view(torch.int16)).view(np.uint16), width,
                       np.float32(group["lr"]), np.float32(beta1), np.float32(beta2), np.float32(group["eps"]),
                       np.float32(group["weight_decay"]), np.float32(1.0 - beta1 ** step),
                       np.float32(np.sqrt(1.0 - beta2 ** step)))
        finally:
            if uniq is not None:
                self._slot[uniq] = -1
        self._copy_version = table._version          # numpy writes leave the version counter alone


def _flat(t: torch.Tensor) -> np.ndarray:
    """A contiguous tensor's memory as a flat numpy array (no copy)."""
    return t.detach().reshape(-1).numpy()
