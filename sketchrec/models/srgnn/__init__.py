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

Modules: estimator.py (`SRGNN`, `TAGNN`), graphs.py (batch graphs and batch order),
network.py (`GatedGraphNet`), functions.py (the custom autograd Functions); the numba kernels
and the item table's optimiser are sketchrec/models/_loss_kernels.py, _attention_kernels.py and
_table_adam.py.
"""

from sketchrec.models.srgnn.estimator import SRGNN, TAGNN, TRIM_EVERY
from sketchrec.models.srgnn.functions import (ItemTable, PackedTargetAttention, SoftmaxCrossEntropy, TargetAttention,
                                              softmax_cross_entropy)
from sketchrec.models.srgnn.graphs import PAD_MULTIPLE, SessionGraphs, batch_order, node_counts, session_graphs
from sketchrec.models.srgnn.network import GatedGraphNet

# the former private names (benchmarks import them from here)
_node_counts = node_counts
_batch_order = batch_order

__all__ = ["PAD_MULTIPLE", "SRGNN", "TAGNN", "TRIM_EVERY", "GatedGraphNet", "ItemTable", "PackedTargetAttention",
           "SessionGraphs", "SoftmaxCrossEntropy", "TargetAttention", "batch_order", "node_counts",
           "session_graphs", "softmax_cross_entropy"]
