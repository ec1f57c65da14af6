"""EMDE density sketches: DLSH coder, sketch encoding, streaming sketches, readout."""

from sketchrec.sketch.dlsh import DLSHCoder
from sketchrec.sketch.sketches import (Readout, StreamingSketch, click_weights, concat_modalities, readout,
                                       sketch_histories)

__all__ = ["DLSHCoder", "Readout", "StreamingSketch", "click_weights", "concat_modalities", "readout",
           "sketch_histories"]
