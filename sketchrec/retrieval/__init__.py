"""Content-based retrieval: gallery search (`CentroidIndex`, the one cosine search), Centroid
Triplet Loss training (`ctl`), cross-modal text <-> image models (`crossmodal`), text -> product
search over a catalogue (`catalogue`), and the evaluation protocols (`metrics`)."""

from sketchrec.retrieval.index import CentroidIndex, SearchResult, group_centroids, normalise
from sketchrec.retrieval.metrics import (evaluate_retrieval, paired_retrieval_metrics, per_query_retrieval_metrics,
                                         ranking_metrics)

__all__ = ["CentroidIndex", "SearchResult", "evaluate_retrieval", "group_centroids", "normalise",
           "paired_retrieval_metrics", "per_query_retrieval_metrics", "ranking_metrics"]
