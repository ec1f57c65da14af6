"""EMDE readout speed: scores over all items for a batch of sketches.

    python benchmarks/readout_speed.py
prints the time to score 1,000 predicted sketches (N=10, width=128) against
the 43,097 items of the Diginetica benchmark (random codes and probabilities:
the cost does not depend on their values), best of 5, output buffer reused.
"""

import time

import numpy as np

from sketchrec.sketch import Readout


def main(batch: int = 1000, n_items: int = 43_097, depth: int = 10, width: int = 128) -> None:
    rng = np.random.default_rng(0)
    scorer = Readout(rng.integers(0, width, (n_items, depth)), width)
    p = rng.random((batch, depth, width)).astype(np.float32)
    out = np.empty((batch, n_items), np.float32)
    scorer(p[:2], out=out[:2])
    best = min(_timed(scorer, p, out) for _ in range(5))
    print(f"readout of {batch} sketches over {n_items:,} items (N={depth}, width={width}): {best * 1000:.0f} ms")


def _timed(scorer, p, out):
    t0 = time.perf_counter()
    scorer(p, out=out)
    return time.perf_counter() - t0


if __name__ == "__main__":
    main()
