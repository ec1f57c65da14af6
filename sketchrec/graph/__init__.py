"""Graphs from interactions and Cleora embeddings."""

from sketchrec.graph.build import Graph
from sketchrec.graph.cleora import Cleora, embed, initial_vectors, transition_matrix

__all__ = ["Graph", "Cleora", "embed", "initial_vectors", "transition_matrix"]
