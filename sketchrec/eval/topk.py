"""Deprecated location: top-k selection moved to `sketchrec.topk` (the bottom layer every
other package imports). This alias stays for one release."""

import warnings

from sketchrec.topk import topk, topk_chunked, select_row, sorted_exclusions  # noqa: F401

warnings.warn("sketchrec.eval.topk moved to sketchrec.topk", DeprecationWarning, stacklevel=2)
