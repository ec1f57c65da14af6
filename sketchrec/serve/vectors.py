"""A model bundle's vector endpoints: POST /similar (the items closest to given items, cosine over
the bundle's `item_vectors` extra) and POST /search (items whose text is closest to each query:
the bundle's `text_vectors` extra, MiniLM vectors of item texts). Both search a `CentroidIndex`;
each is routed only when the bundle has its vectors."""

from __future__ import annotations

import numpy as np

from sketchrec.retrieval.index import CentroidIndex, normalise
from sketchrec.serve.schemas import SearchResponse, SimilarResponse


def indexes(item_vectors, text_vectors, chunk_rows: int) -> tuple[CentroidIndex | None, CentroidIndex | None]:
    """(index of the item vectors, index of the text vectors), None for a missing extra. Rows are
    items, scored `chunk_rows` queries at a time by /similar; the text index holds unit rows and
    takes the encoder's unit queries as they are, all of a request's at once (as /search did
    before it went through the index)."""
    items = None if item_vectors is None else CentroidIndex("instance", chunk_rows=chunk_rows).fit(item_vectors)
    texts = None
    if text_vectors is not None:
        texts = CentroidIndex("instance", chunk_rows=None, assume_unit=True).fit(normalise(text_vectors))
    return items, texts


def register_similar(service, items, item_index: CentroidIndex) -> None:
    """Route POST /similar over `item_index` (rows: the items of the id map `items`)."""
    n_items = service.n_items

    def similar_check(req) -> None:                    # unknown ids count: they have a (short) result too
        service.check_results(len(req.items), min(req.k, n_items))

    @service.heavy("/similar", service.models["similar"], SimilarResponse, similar_check)
    def similar(req):
        """The items closest to each given item (cosine over the bundle's item vectors)."""
        k = min(req.k, n_items)
        look = items.lookup([str(i) for i in req.items]) if req.items else None
        known = look.known if look is not None else np.zeros(0, bool)
        rows = look.internal[known] if look is not None else np.zeros(0, np.int64)
        hits = iter(())
        if len(rows):
            found = item_index.search_rows(rows, k, exclude_self=True)
            hits = iter(service.ranked(found.rows, found.scores))
        results = []
        for item, is_known in zip(req.items, known):
            t, v = next(hits) if is_known else ([], [])
            results.append({"item": item, "unknown": not is_known, "items": t, "scores": v})
        service.metrics.unknown_ids.inc(int((~known).sum()))
        service.metrics.scored.labels("similar").inc(len(req.items))
        return service.answer({"results": results}, large=len(rows) > 100)


def register_search(service, text_index: CentroidIndex) -> None:
    """Route POST /search over `text_index` (rows: the bundle's items), queries encoded by MiniLM."""
    encoder = []

    @service.heavy("/search", service.models["search"], SearchResponse, service.check_search)
    def search(req):
        """Items whose text is closest to each query (MiniLM vectors)."""
        from sketchrec.embedders.text import TextEncoder
        k = min(req.k, service.n_items)
        if not encoder:
            encoder.append(TextEncoder(progress=False))
        hits = text_index.search(encoder[0].encode(req.texts), k)
        service.metrics.scored.labels("search").inc(len(req.texts))
        return service.answer({"results": [{"text": t, "items": i, "scores": v}
                                           for t, (i, v) in zip(req.texts, service.ranked(hits.rows, hits.scores))]})
