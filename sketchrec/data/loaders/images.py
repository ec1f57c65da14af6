"""Small labelled image sets (MNIST test, ORL faces, UCI digits, COIL-20 / JAFFE /
UMIST / Yale B / Yale instance sets) and the fashion product photos (read lazily from tars)."""

from __future__ import annotations

import gzip
import hashlib
import tarfile
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
import pyarrow as pa
import scipy.io

from sketchrec.data.loaders._parse import read_csv
from sketchrec.data.registry import DatasetSpec, file_table, recipe, register


@dataclass
class ImageDataset:
    """Images with one class label each.

    images : (n, h, w) uint8 grey or (n, h, w, 3) uint8 RGB.
    labels : (n,) int64 in [0, len(label_names)); label_names[i] names class i
        (the source's own label value or name).
    """

    name: str
    images: np.ndarray
    labels: np.ndarray
    label_names: list
    meta: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.images)

    def __repr__(self) -> str:
        return (f"ImageDataset({self.name!r}: {len(self):,} images of {self.images.shape[1:]}, "
                f"{len(self.label_names)} classes)")


def _idx(data: bytes, magic: int) -> np.ndarray:
    """Parse an IDX file (big-endian int32 magic and dims, then uint8 data)."""
    head = np.frombuffer(data[:4], ">i4")[0]
    if head != magic:
        raise ValueError(f"IDX magic {head:#x}, expected {magic:#x}")
    ndim = magic & 0xFF
    dims = np.frombuffer(data[4:4 + 4 * ndim], ">i4").astype(np.int64)
    return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load_mnist_test(paths: dict) -> ImageDataset:
    """MNIST test set: (10000, 28, 28) uint8, labels 0..9."""
    base = "images/mnist-test/"
    images = _idx(gzip.decompress(Path(paths[base + "t10k-images-idx3-ubyte.gz"]).read_bytes()), 0x803)
    labels = _idx(gzip.decompress(Path(paths[base + "t10k-labels-idx1-ubyte.gz"]).read_bytes()), 0x801)
    return ImageDataset("mnist-test", images.copy(), labels.astype(np.int64), [str(d) for d in range(10)])


def _pgm(data: bytes) -> np.ndarray:
    """Binary PGM (P5, maxval < 256) -> (h, w) uint8."""
    tokens, pos = [], 0
    while len(tokens) < 4:  # magic, width, height, maxval; '#' comments allowed between
        while data[pos:pos + 1].isspace():
            pos += 1
        if data[pos:pos + 1] == b"#":
            pos = data.index(b"\n", pos) + 1
            continue
        end = pos
        while not data[end:end + 1].isspace():
            end += 1
        tokens.append(data[pos:end])
        pos = end
    if tokens[0] != b"P5" or int(tokens[3]) > 255:
        raise ValueError(f"not an 8-bit binary PGM (header {tokens})")
    w, h = int(tokens[1]), int(tokens[2])
    return np.frombuffer(data, np.uint8, count=w * h, offset=pos + 1).reshape(h, w)


def load_orl_faces(paths: dict) -> ImageDataset:
    """ORL / AT&T faces: (400, 112, 92) uint8 read from the tar.gz in memory (no
    extraction); label k = subject s{k+1}, images ordered by subject then number."""
    found = {}
    with tarfile.open(paths["images/orl-faces/orl_faces_pgm.tar.gz"], "r:gz") as tar:
        for member in tar:
            parts = Path(member.name).parts
            if member.isfile() and member.name.endswith(".pgm") and len(parts) >= 2:
                subject, number = int(parts[-2].lstrip("s")), int(Path(parts[-1]).stem)
                found[(subject, number)] = _pgm(tar.extractfile(member).read())
    keys = sorted(found)
    subjects = sorted({s for s, _ in keys})
    labels = np.searchsorted(subjects, [s for s, _ in keys]).astype(np.int64)
    return ImageDataset("orl-faces", np.stack([found[k] for k in keys]), labels,
                        [f"s{s}" for s in subjects], meta={"image_numbers": [n for _, n in keys]})


def load_sklearn_digits(paths: dict) -> ImageDataset:
    """UCI optical digits as bundled in scikit-learn: (1797, 8, 8) uint8 values 0..16."""
    t = read_csv(paths["images/sklearn-digits/digits.csv.gz"], names=[f"c{i}" for i in range(65)])
    data = np.stack([t.column(i).to_numpy() for i in range(65)], axis=1).astype(np.int64)
    return ImageDataset("sklearn-digits", data[:, :64].reshape(-1, 8, 8).astype(np.uint8),
                        data[:, 64], [str(d) for d in range(10)])


# file, pixel key, label key, (h, w), reshape order, one image per column
_INSTANCE_SETS = {
    "coil20": ("COIL20.mat", "X", "Y", (32, 32), "F", False),
    "umist": ("UMIST.mat", "X", "Y", (32, 32), "F", False),
    "jaffe": ("JAFFE.mat", "X", "Y", (32, 32), "C", False),
    "yaleb": ("YaleB_32x32.mat", "features", "Label", (32, 32), "F", True),
    "yale": ("Yale_64x64.mat", "fea", "gnd", (64, 64), "F", False),
}


def load_instance_set(paths: dict, *, name: str) -> ImageDataset:
    """A .mat instance set -> (n, h, w) uint8 grey images, labels coded 0..C-1
    (label_names = the source's label values). Reshape order per the README:
    column-major for COIL20, UMIST, YaleB, Yale; row-major for JAFFE."""
    file, x_key, y_key, (h, w), order, by_column = _INSTANCE_SETS[name]
    mat = scipy.io.loadmat(paths[f"images/instance-sets/{file}"])
    pixels = np.asarray(mat[x_key])
    if by_column:
        pixels = pixels.T
    pixels = np.clip(np.rint(pixels), 0, 255).astype(np.uint8) if pixels.dtype != np.uint8 else pixels
    n = len(pixels)
    # a column-major reshape of each row is the transpose of its C-order (w, h) reshape
    images = pixels.reshape(n, w, h).transpose(0, 2, 1) if order == "F" else pixels.reshape(n, h, w)
    names, labels = np.unique(np.asarray(mat[y_key]).ravel(), return_inverse=True)
    return ImageDataset(name, np.ascontiguousarray(images), labels.astype(np.int64),
                        [int(v) for v in names], meta={"file": file})


class FashionImages:
    """9,583 fashion product photos (224 x 224 JPEG) read lazily from two tar files.

    index : pyarrow Table from index.csv, one row per image: id, file, archive,
        productDisplayName, gender, masterCategory, subCategory, articleType,
        baseColour, season, year, usage, sha256 (of the JPEG bytes).
    The tar member offsets are indexed once on first access (headers only, no
    extraction). `read_bytes(id)` gives the JPEG bytes; `open_image(id)` a
    PIL image when Pillow is installed, else the raw JPEG bytes.
    """

    def __init__(self, index: pa.Table, archives: dict[str, Path]):
        self.index = index
        self.archives = {k: Path(v) for k, v in archives.items()}
        self.ids = index.column("id").to_numpy()
        self._row = {int(i): r for r, i in enumerate(self.ids)}
        self._offsets: dict[str, tuple[str, int, int]] | None = None

    def __len__(self) -> int:
        return self.index.num_rows

    def __repr__(self) -> str:
        return f"FashionImages({len(self):,} images in {len(self.archives)} tar files)"

    def _member_offsets(self) -> dict[str, tuple[str, int, int]]:
        if self._offsets is None:
            offsets = {}
            for name, path in self.archives.items():
                with tarfile.open(path, "r:") as tar:
                    for m in tar:
                        if m.isfile():
                            offsets[m.name] = (name, m.offset_data, m.size)
            self._offsets = offsets
        return self._offsets

    def read_bytes(self, image_id: int, *, check: bool = False) -> bytes:
        """The JPEG bytes of product `image_id` (check=True verifies the index sha256)."""
        row = self._row.get(int(image_id))
        if row is None:
            raise KeyError(f"no image with id {image_id} (ids {self.ids.min()}..{self.ids.max()})")
        file = self.index.column("file")[row].as_py()
        archive, offset, size = self._member_offsets()[file]
        with open(self.archives[archive], "rb") as fh:
            fh.seek(offset)
            data = fh.read(size)
        if check and hashlib.sha256(data).hexdigest() != self.index.column("sha256")[row].as_py():
            raise ValueError(f"image {image_id} ({file} in {archive}): sha256 does not match index.csv")
        return data

    def open_image(self, image_id: int):
        """A PIL.Image (RGB) if Pillow is installed, else the raw JPEG bytes."""
        data = self.read_bytes(image_id)
        try:
            from PIL import Image
        except ImportError:
            return data
        import io
        return Image.open(io.BytesIO(data)).convert("RGB")

    def image_array(self, image_id: int) -> np.ndarray:
        """(h, w, 3) uint8; needs Pillow."""
        from sketchrec._optional import require
        require("PIL", "decoding JPEGs (read_bytes() gives them undecoded)")
        return np.asarray(self.open_image(image_id), dtype=np.uint8)


def load_fashion_images(paths: dict) -> FashionImages:
    base = "fashion-product-images/"
    index = read_csv(paths[base + "index.csv"], column_types={"id": pa.int64(), "year": pa.string()})
    archives = {Path(rel).name: p for rel, p in paths.items() if rel.endswith(".tar")}
    return FashionImages(index, archives)


# -- catalogue ---------------------------------------------------------------------

register(DatasetSpec(
    "mnist-test", "images", "MNIST handwritten digits, test set (10,000 x 28 x 28)",
    file_table("""
167310007f03058885c7e95e6c0b19c20de5c7fd3031f4cbdadc9014a523d80b  1648877  images/mnist-test/t10k-images-idx3-ubyte.gz
fc607395669ec21321ea83e4b82c0544b7e8e63ff5b34337c06bc0a17cc0da3c  4542  images/mnist-test/t10k-labels-idx1-ubyte.gz
""", repo="kelas/mnist", commit="283b387221ab46655e600cfcc25d843bb14292b9"),
    "Y. LeCun, L. Bottou, Y. Bengio, P. Haffner. Gradient-based learning applied to document recognition. "
    "Proc. IEEE 1998", "none stated in the source repository", "kelas/mnist@283b387221ab46655e600cfcc25d843bb14292b9",
    dict(images=10_000, class_counts=(980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009)), load_mnist_test))

register(DatasetSpec(
    "orl-faces", "images", "ORL / AT&T faces: 40 subjects x 10 images, 112 x 92 grey",
    file_table("""
f6b4439ae6a6e78f7470ef4905f4efc2f966df2057077b8f03382c43dde420fb  3716607  images/orl-faces/orl_faces_pgm.tar.gz
""", note="tar.gz made by the dataset staging from the 400 PGMs of orl_faces/ in "
        "hakawa-bernardi/orl-face-recognition-pca-svm@3edc842bc89bddbd3d6bcf12d23a4f9c2a493883"),
    "F. Samaria, A. Harter. Parameterisation of a stochastic model for human face identification. "
    "IEEE WACV 1994 (credit: Olivetti Research Laboratory)", "none stated beyond the credit request",
    "hakawa-bernardi/orl-face-recognition-pca-svm@3edc842bc89bddbd3d6bcf12d23a4f9c2a493883",
    dict(images=400, subjects=40, per_subject=10, height=112, width=92), load_orl_faces))

register(DatasetSpec(
    "sklearn-digits", "images", "UCI optical digits 8 x 8 (as bundled in scikit-learn)",
    file_table("""
09f66e6debdee2cd2b5ae59e0d6abbb73fc2b0e0185d2e1957e9ebb51e23aa22  57523  images/sklearn-digits/digits.csv.gz
8e7e58d612958f7d9b0de1931ed68b211703eeb239e808f3d82c5f0837cc0222  2007  images/sklearn-digits/digits.rst
""", note="member of the scikit-learn 1.9.1 wheel (sklearn/datasets/data/digits.csv.gz, "
        "sklearn/datasets/descr/digits.rst), copied unchanged; copy it from an installed scikit-learn",
        optional=("digits.rst",), recipes={  # scikit-learn is a dependency: fetch copies (and checks) its files
            "images/sklearn-digits/digits.csv.gz": recipe("package-file", package="sklearn",
                                                          path="datasets/data/digits.csv.gz"),
            "images/sklearn-digits/digits.rst": recipe("package-file", package="sklearn",
                                                       path="datasets/descr/digits.rst")}),
    "E. Alpaydin, C. Kaynak. Optical Recognition of Handwritten Digits. UCI ML repository 1998",
    "BSD-3-Clause (scikit-learn)", "PyPI scikit-learn 1.9.1 wheel",
    dict(images=1_797, class_counts=(178, 182, 177, 183, 181, 182, 181, 179, 174, 180)), load_sklearn_digits))

_ADAGAE = dict(repo="hyzhang98/AdaGAE", commit="6d04946060bacd41ee31eba5c124887bca44f369")
_SPARSE = dict(repo="tansyab1/CNN-Sparse", commit="c52b9c2c783bf6e350b11962781b7c2d701ce2c4")
_INSTANCE_CATALOG = {
    "coil20": ("b22b9beb0668f707990eda2b5f922384fd3e6d63d6df7ede3a3b5e2319c4e397  896630", _ADAGAE,
               "COIL-20 objects, 72 views each, 32 x 32", dict(images=1_440, classes=20, per_class=72),
               "S. A. Nene, S. K. Nayar, H. Murase. Columbia Object Image Library (COIL-20). 1996"),
    "jaffe": ("41eeeb529e6b41c6418047498111e1d1942c608e742f950435426bc395ffe846  1746840", _ADAGAE,
              "JAFFE facial expressions, 32 x 32", dict(images=213, classes=10),
              "M. Lyons et al. Coding Facial Expressions with Gabor Wavelets. FG 1998"),
    "umist": ("247ce22f5aa04ea95e584756e9255f29b340ed43352b67a92daac724a2144b09  589616", _ADAGAE,
              "UMIST faces in varying pose, 32 x 32", dict(images=575, classes=20),
              "D. Graham, N. Allinson. Characterising Virtual Eigensignatures for General Purpose Face "
              "Recognition. 1998"),
    "yaleb": ("b3331cafe70867bef7881c8aa6d429a01919be9920643ebb24d4ae220194a56f  2119682", _SPARSE,
              "cropped Extended Yale B faces under varying light, 32 x 32", dict(images=2_414, classes=38),
              "A. Georghiades, P. Belhumeur, D. Kriegman. PAMI 2001; K.-C. Lee, J. Ho, D. Kriegman. PAMI 2005"),
    "yale": ("2a40d2363ef42466e645523a8d9c5f902a136ab5d03242ca9a642db3872e52ee  641318", _SPARSE,
             "Yale faces, 15 people x 11, 64 x 64", dict(images=165, classes=15, per_class=11),
             "P. Belhumeur, J. Hespanha, D. Kriegman. Eigenfaces vs. Fisherfaces. PAMI 1997"),
}
for _name, (_sum, _repo, _what, _counts, _citation) in _INSTANCE_CATALOG.items():
    _rel = f"images/instance-sets/{_INSTANCE_SETS[_name][0]}"
    register(DatasetSpec(
        _name, "images", f"{_what} (instance set: several images per object / person)",
        file_table(f"{_sum}  {_rel}", remote_path=lambda rel: "data/" + rel.rsplit("/", 1)[1], **_repo),
        _citation, "none stated in the source repository", f"{_repo['repo']}@{_repo['commit']}",
        _counts, partial(load_instance_set, name=_name)))

register(DatasetSpec(
    "fashion-images", "images", "9,583 fashion product photos (224 x 224 JPEG) with titles and categories",
    file_table("""
b8b1cbf048769249691cf63c68b645b90549b8ed720cf935246a0f4dbcafc157  31764480  fashion-product-images/images_part1.tar
b29f7c21a8942b274b8d6d68e1a101cc9226685fd37e5acb541dca428f3e797c  30392320  fashion-product-images/images_part2.tar
7694c107a1ebc7aaac8539428417aa1d6d680591da026c83cabd70c26a5c34b9  1903570  fashion-product-images/index.csv
""", note="made by the dataset staging: the images/ folder of GaneshNeupane01/Fashion-Recommendation-System"
        "@7cf263426a1a818fbcab19006b87c924b4dd0fa1 tarred by id range, and index.csv joined with "
        "fashion-product-catalog"),
    "P. Aggarwal. Fashion Product Images Dataset (Kaggle)", "none stated in the source repository",
    "GaneshNeupane01/Fashion-Recommendation-System@7cf263426a1a818fbcab19006b87c924b4dd0fa1",
    dict(images=9_583, distinct_contents=9_461, apparel=5_353, footwear=2_122, height=224, width=224),
    load_fashion_images))
