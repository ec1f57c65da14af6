"""Content-based retrieval: instance and centroid galleries, exact and HNSW search, metrics."""

from sketchrec.retrieval.index import CentroidIndex, SearchResult, group_centroids, normalise
from sketchrec.retrieval.metrics import evaluate_retrieval, ranking_metrics

__all__ = ["CentroidIndex", "SearchResult", "evaluate_retrieval", "group_centroids", "normalise",
           "ranking_metrics"]
