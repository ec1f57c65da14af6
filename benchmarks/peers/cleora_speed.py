"""One timed Cleora run for benchmarks/cleora_vs_pycleora.py, in a fresh process (its peak RSS is
its own): sketchrec's (with the main virtualenv) or pycleora 3.2.1's (with pycleora's own).

    python cleora_speed.py ours|pycleora EDGES.tsv DIM ITERATIONS THREADS [BACKEND]

EDGES.tsv has a header `a<TAB>b`. Prints one JSON line: total, load and embed seconds, nodes
(and, for ours, stored non-zeros), peak RSS MiB.
"""

import json
import resource
import sys
import time

who, path, dim, iterations, threads = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
t0 = time.perf_counter()
if who == "ours":
    from sketchrec.graph import Cleora, Graph
    graph = Graph.read_edges(path, src="a", dst="b", delimiter="\t", threads=threads)
    t1 = time.perf_counter()
    Cleora(dim=dim, iterations=iterations, backend=sys.argv[6], progress=False).fit(graph)
    sizes = {"nodes": graph.n_nodes, "nnz": graph.n_edges}
else:
    import numpy  # noqa: F401  (pycleora's start-up, timed as ever)
    from pycleora import SparseMatrix, embed

    def lines():
        with open(path) as fh:
            next(fh)
            for line in fh:
                yield line.rstrip("\n")
    graph = SparseMatrix.from_iterator(lines(), "a b")
    t1 = time.perf_counter()
    embed(graph, feature_dim=dim, num_iterations=iterations, whiten=False, num_workers=threads)
    sizes = {"nodes": graph.num_entities}
t2 = time.perf_counter()
print(json.dumps({"total_s": t2 - t0, "load_s": t1 - t0, "embed_s": t2 - t1, **sizes,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
