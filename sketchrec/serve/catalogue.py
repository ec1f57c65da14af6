"""A catalogue-search bundle's endpoint: POST /search, text queries -> the k closest products
(`sketchrec.retrieval.catalogue.CatalogueSearch`: the query through the cross-modal model's
text side, ranked against every product image by cosine)."""

from __future__ import annotations

from sketchrec.serve.schemas import CatalogueSearchResponse


def register(service, catalogue, encoder) -> None:
    """Route POST /search of `service` over `catalogue` (a fitted `CatalogueSearch`), queries
    tokenised by `encoder` (a `TextEncoder` with the catalogue's max_length)."""
    titles = catalogue.texts_

    @service.heavy("/search", service.models["search"], CatalogueSearchResponse, service.check_search)
    def search(req):
        """The products whose photos best match each text query: ids, titles and cosines, best first."""
        hits = catalogue.search(req.texts, min(req.k, service.n_items), encoder=encoder, as_result=True)
        service.metrics.scored.labels("search").inc(len(req.texts))
        results = [{"text": text, "items": ids, "titles": [titles[r] for r in rows[:len(ids)]], "scores": scores}
                   for text, (ids, scores), rows in zip(req.texts, service.ranked(hits.rows, hits.scores), hits.rows)]
        return service.answer({"results": results})
