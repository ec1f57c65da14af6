"""Edge lists as TSV files (a header 'a<TAB>b', one edge per line, node names as strings), the input
format of Cleora's command-line tools: a synthetic power-law bipartite graph and Facebook page-page.
Used by benchmarks/cleora_vs_pycleora.py.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sketchrec.data import registry


def write_powerlaw_tsv(path: Path, nodes: int, edges: int, seed: int = 0) -> None:
    """Bipartite edges user u<i> - item i<j>: users uniform, items Zipf(1.2); header 'a<TAB>b'."""
    rng = np.random.default_rng(seed)
    n_users, n_items = nodes // 2, nodes - nodes // 2
    with open(path, "w") as fh:
        fh.write("a\tb\n")
        for start in range(0, edges, 2_000_000):
            n = min(2_000_000, edges - start)
            users = rng.integers(0, n_users, n)
            items = (rng.zipf(1.2, n) - 1) % n_items
            block = np.char.add(np.char.add(np.char.add("u", users.astype(str)), "\tp"), items.astype(str))
            fh.write("\n".join(block.tolist()) + "\n")


def facebook_tsv(path: Path) -> None:
    """The facebook-page-page edges as a TSV of node names n<id> (header 'a<TAB>b')."""
    rows = np.loadtxt(registry.data_dir() / "facebook-page-page/musae_facebook_edges.csv", delimiter=",", skiprows=1,
                      dtype=np.int64)
    with open(path, "w") as fh:
        fh.write("a\tb\n")
        fh.write("\n".join(f"n{a}\tn{b}" for a, b in rows) + "\n")
