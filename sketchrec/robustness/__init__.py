"""Robustness: natural text corruptions (WildNLP aspects) and corruption benchmarks."""

from sketchrec.robustness.aspects import (ASPECTS, Article, Aspect, Compose, Digits2Words, Homophones, Marks,
                                          Misspelling, Negatives, Positives, Qwerty, RemoveChar, RemoveSpace, Swap,
                                          make)

__all__ = ["ASPECTS", "Article", "Aspect", "Compose", "Digits2Words", "Homophones", "Marks", "Misspelling",
           "Negatives", "Positives", "Qwerty", "RemoveChar", "RemoveSpace", "Swap", "make"]
