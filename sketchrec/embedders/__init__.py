"""Text and image encoders behind one small interface.

An encoder has a `name`, a `dim` and `encode(inputs) -> (n, dim) float32`,
so item content can be turned into vectors the same way, whatever its
modality. The vectors then feed EMDE sketches or graph features as an
`Embeddings`. Models are loaded lazily from installed packages, never
from the network, so importing this package stays cheap.
"""

from sketchrec.embedders.text import TextEncoder, embed_items

__all__ = ["TextEncoder", "embed_items"]
