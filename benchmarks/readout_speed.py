"""EMDE readout speed: scores over all items for a batch of predicted sketches.

    python -m benchmarks.readout_speed
times scoring 1,000 predicted sketches against the 43,097 items of the
Diginetica benchmark (random codes and log-probabilities: the cost does not
depend on their values), both kernels, depth 10 (one source) and 20 (the
session model's two sources), width 128; best of 5 with the output buffer
reused. Writes docs/benchmarks/emde_readout.md.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from sketchrec.eval.report import benchmark_parser, best_seconds, command, markdown_table, page_head, write_page
from sketchrec.sketch import Readout


def main(batch: int = 1000, n_items: int = 43_097, width: int = 128) -> None:
    benchmark_parser(__doc__).parse_args()
    rng = np.random.default_rng(0)
    out = np.empty((batch, n_items), np.float32)
    rows = []
    for depth in (10, 20):
        codes = rng.integers(0, width, (n_items, depth))
        log_p = np.log(rng.dirichlet(np.ones(width), size=(batch, depth))).astype(np.float32)
        for method in ("direct", "pairs"):
            scorer = Readout(codes, width, method=method)
            scorer.from_log(log_p[:2], out=out[:2])            # compile / warm up
            seconds = best_seconds(lambda: scorer.from_log(log_p, out=out), repeats=5, warmup=0)
            rows.append([depth, method, f"{seconds * 1000:.0f}", f"{batch / seconds:,.0f}",
                         f"{batch * n_items / seconds:,.3g}"])
            print(f"depth {depth}, {method}: {seconds * 1000:.0f} ms for {batch} sketches x {n_items:,} items",
                  flush=True)
    write_page(Path(__file__).resolve().parents[1] / "docs/benchmarks/emde_readout.md",
               page_head("EMDE readout: scores over all items", command("readout_speed"),
                         f"; numba threads {os.environ.get('NUMBA_NUM_THREADS', 'all cores')}") +
               f"{batch:,} predicted sketches (log-probabilities, width {width}) scored against {n_items:,} items "
               "(Diginetica's item count), best of 5, output buffer reused. `direct`: one gather per item and "
               "depth; `pairs`: depths joined two by two into width² tables, one gather per item and pair "
               "(`Readout(method='auto')` picks it here).\n\n"
               + "\n".join(markdown_table(["depth N", "kernel", "ms per 1,000 sketches", "users/s",
                                           "item scores/s"], rows)))


if __name__ == "__main__":
    main()
