"""SR-GNN: vectorised session graphs against a per-session reference, and learning a rule."""

import numpy as np

from sketchrec.data.sessions import Sessions
from sketchrec.eval.protocols import evaluate_next_item
from sketchrec.models.srgnn import SRGNN, session_graphs


def reference_graph(seq):
    """SR-GNN's per-session construction (as in its published preprocessing), written plainly."""
    nodes = sorted(set(seq))
    n = len(nodes)
    a = np.zeros((n, n))
    for u, v in zip(seq[:-1], seq[1:]):
        a[nodes.index(u), nodes.index(v)] = 1
    col, row = a.sum(0), a.sum(1)
    a_in = np.divide(a, col, out=np.zeros_like(a), where=col > 0).T
    a_out = np.divide(a.T, row, out=np.zeros_like(a), where=row > 0).T
    return nodes, [nodes.index(i) for i in seq], np.concatenate([a_in, a_out], axis=1)


def test_session_graphs_match_reference():
    rows = [[3, 5, 3, 7], [2], [9, 9, 1, 5, 1]]
    node_items, alias, mask, adj = session_graphs(Sessions.from_lists(rows, n_items=10))
    for b, seq in enumerate(rows):
        nodes, ref_alias, ref_adj = reference_graph(seq)
        n = len(nodes)
        assert node_items[b, :n].tolist() == nodes and np.all(node_items[b, n:] == 10)
        assert alias[b, :len(seq)].tolist() == ref_alias and mask[b].sum() == len(seq)
        w = node_items.shape[1]
        np.testing.assert_allclose(adj[b][:n, :n], ref_adj[:, :n])
        np.testing.assert_allclose(adj[b][:n, w:w + n], ref_adj[:, n:])
        assert np.all(adj[b][n:] == 0)


def test_srgnn_learns_next_item_rule():
    rng = np.random.default_rng(0)
    starts = rng.integers(0, 30, 400)
    rows = ((starts[:, None] + np.arange(5)[None, :]) % 30).tolist()
    train = Sessions.from_lists(rows, n_items=30)
    prefixes = Sessions.from_lists([[4, 5, 6], [28, 29], [12]], n_items=30)
    targets = np.array([7, 0, 13])
    model = SRGNN(hidden=32, epochs=8, batch_size=50, lr=5e-3, progress=False, threads=1).fit(train)
    metrics, _ = evaluate_next_item(model, prefixes, targets, ks=(1,), progress=False)
    assert metrics["HR@1"] == 1.0
    assert model.history_[-1]["loss"] < model.history_[0]["loss"]
