"""Your own product catalogue for cross-modal search: a table, one row per product, and a folder of images.

The same interface as the registry's image catalogues (`ids`, an Arrow `index` table holding the
text column, `read_bytes(id)`), so `sketchrec train crossmodal --catalogue products.csv --images
photos/` trains on it exactly as on `fashion-images`. Every image is found before anything is
computed: a missing file is one clear error naming the product, not a crash an hour into encoding.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sketchrec.data.readers import read_columns

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp")


class ImageCatalogue:
    """Products from a table file (CSV/TSV(.gz), Parquet, JSON) and their photos in a folder.

    table : the product table; `id_column` holds unique product ids, `text_column` the titles.
    images : the folder of photos. `image_column` names a column of file names relative to it;
        without one, product `x`'s photo is `x.jpg` (or .jpeg/.png/.webp/.bmp).
    name : the name feature caches are kept under (default: the table file's stem).
    """

    def __init__(self, table: str | Path, images: str | Path, *, id_column: str = "id",
                 text_column: str = "title", image_column: str | None = None, name: str | None = None):
        columns = list(dict.fromkeys(c for c in (id_column, text_column, image_column) if c))
        self.index = read_columns(str(table), columns=columns)
        if self.index.num_rows == 0:
            raise ValueError(f"{table}: no products")
        self.name = name or Path(table).name.split(".")[0]
        ids = self.index.column(id_column).to_numpy(zero_copy_only=False)
        # text ids as fixed-width unicode: saved and compared without pickle by the feature caches
        self.ids = ids if ids.dtype.kind in "iu" else ids.astype(str)
        unique, counts = np.unique(self.ids, return_counts=True)
        if (counts > 1).any():
            raise ValueError(f"{table}: product id {unique[counts > 1][0]!r} appears "
                             f"{counts.max()} times (column {id_column!r} must be unique)")
        images = Path(images)
        if not images.is_dir():
            raise FileNotFoundError(f"image folder {images} does not exist")
        if image_column is not None:
            paths = [images / f for f in self.index.column(image_column).to_pylist()]
        else:
            on_disk = {p.stem: p for p in images.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES}
            paths = [on_disk.get(str(i), images / f"{i}.jpg") for i in self.ids]
        missing = [(i, p) for i, p in zip(self.ids.tolist(), paths) if not p.is_file()]
        if missing:
            raise FileNotFoundError(f"{len(missing):,} of {len(paths):,} products have no image, e.g. product "
                                    f"{missing[0][0]!r}: {missing[0][1]} not found")
        self._path = dict(zip(self.ids.tolist(), paths))

    def __len__(self) -> int:
        return self.index.num_rows

    def __repr__(self) -> str:
        return f"ImageCatalogue({self.name!r}: {len(self):,} products)"

    def read_bytes(self, product_id) -> bytes:
        """The image file's bytes of one product."""
        key = product_id.item() if isinstance(product_id, np.generic) else product_id
        key = str(key) if self.ids.dtype.kind == "U" else key      # CSV ids are read as text
        try:
            return self._path[key].read_bytes()
        except KeyError:
            raise KeyError(f"{self.name}: no product {product_id!r}") from None
