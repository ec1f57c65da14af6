"""Request and response bodies. Every bound the handlers enforce on a request is stated in its
model, so it is in the OpenAPI schema (422 beyond); responses are documented, not validated at
run time (batches are encoded straight from numpy)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints

from sketchrec.serve.limits import SAFE_INT, scored_rows


def _integral(value):
    """JSON Schema's integer includes 1.0: take it (strict mode alone would not), but not true or "1"."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _json_int(ge: int, le: int):
    """An integer in [ge, le] as JSON Schema means it (the bounds inside, so the schema states them)."""
    return Annotated[int, Field(ge=ge, le=le), BeforeValidator(_integral)]


def _request_models(lim: dict, n_items: int) -> dict[str, type[BaseModel]]:
    """The request bodies, with this app's limits as schema constraints (strict: JSON types only,
    no "1" for 1 or true for 1; no unknown fields). Rows scored against the whole catalogue are
    capped by `max_scored` / items, so the schema states the cap for this bundle."""
    rows = scored_rows(lim, n_items)
    Id = (Annotated[str, StringConstraints(max_length=lim["max_id_chars"])]
          | _json_int(-SAFE_INT, SAFE_INT))
    Session = Annotated[list[Id], Field(max_length=lim["max_items_per_session"])]
    K = Annotated[_json_int(1, lim["max_k"]), Field(description="results per row")]
    strict = ConfigDict(strict=True, extra="forbid")
    work = (f"At most {lim['max_input_items']:,} item ids and {lim['max_results']:,} results (rows x k) per "
            f"request, and an answer of at most {lim['max_response_bytes']:,} bytes (413 beyond).")

    class RecommendOne(BaseModel):
        """One session."""
        model_config = strict
        items: Session = Field(description="one session's item ids, oldest first")
        k: K = 20
        exclude_seen: bool = False

    class RecommendBatch(BaseModel):
        """Several sessions (a batch)."""
        model_config = strict
        sessions: Annotated[list[Session], Field(min_length=1, max_length=rows)] = Field(
            description="several sessions, each oldest first. " + work)
        k: K = 20
        exclude_seen: bool = False

    class ItemsRequest(BaseModel):
        model_config = strict
        items: Annotated[list[Id], Field(max_length=rows)] = Field(
            description="item ids to find neighbours of. " + work)
        k: K = 10

    class TextRequest(BaseModel):
        model_config = strict
        texts: Annotated[list[Annotated[str, StringConstraints(max_length=lim["max_text_chars"])]],
                         Field(min_length=1, max_length=min(lim["max_texts"], rows))] = Field(
            description=f"queries; their first 512 characters each count towards a limit of "
                        f"{lim['max_search_chars']:,} characters per request (413 beyond). " + work)
        k: K = 10

    class ProfileRequest(BaseModel):
        model_config = strict
        sessions: Annotated[list[Session], Field(min_length=1, max_length=lim["max_sessions"])] = Field(
            description="sessions to profile. " + work.replace("results (rows x k)", "profile values"))

    class ExplainRequest(BaseModel):
        model_config = strict
        items: Session = Field(description="the session's item ids, oldest first")
        item: Id = Field(description="the recommended item to explain (404 if the bundle does not have it)")
        top_buckets: _json_int(1, 100) = 5

    return {"recommend": RecommendOne | RecommendBatch, "similar": ItemsRequest, "search": TextRequest,
            "profile": ProfileRequest, "explain": ExplainRequest}


ItemId = str | int


class Recommendation(BaseModel):
    items: list[ItemId] = Field(description="best first; fewer than k when fewer items can be recommended")
    scores: list[float]
    unknown_items: list[ItemId] = Field(description="ids not in the bundle (ignored); the echo is truncated")
    unknown_count: int = Field(description="how many ids were unknown, all of them")


class RecommendBatchResponse(BaseModel):
    results: list[Recommendation]


class Neighbours(BaseModel):
    item: ItemId
    unknown: bool = False
    items: list[ItemId]
    scores: list[float]


class SimilarResponse(BaseModel):
    results: list[Neighbours]


class TextHits(BaseModel):
    text: str
    items: list[ItemId]
    scores: list[float]


class SearchResponse(BaseModel):
    results: list[TextHits]


class Profile(BaseModel):
    indices: list[int]
    values: list[float]
    unknown_items: list[ItemId]
    unknown_count: int


class ProfileResponse(BaseModel):
    dim: int
    results: list[Profile]


class Bucket(BaseModel):
    feature: str
    attribution: float


class Explanation(BaseModel):
    item: ItemId
    score: float
    modalities: dict[str, float]
    buckets: list[Bucket]
    unknown_items: list[ItemId]
    unknown_count: int


class CatalogueHits(BaseModel):
    text: str
    items: list[ItemId] = Field(description="product ids, best first")
    titles: list[str] = Field(description="the products' titles")
    scores: list[float]


class CatalogueSearchResponse(BaseModel):
    results: list[CatalogueHits]


class Health(BaseModel):
    status: str
    model: str | None
    items: int
    bundle: str | None
    endpoints: dict[str, bool]
