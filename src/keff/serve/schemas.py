"""Request bodies of the search service: strict types, unknown fields refused.

Limits that depend on the server's settings (k, number and length of queries) are checked by
:func:`check_texts` and :func:`check_k` with messages naming the limit.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr

from keff.serve.config import ServeConfig
from keff.serve.scoring import RequestError

_STRICT = ConfigDict(extra="forbid", strict=True)


class SearchRequest(BaseModel):
    """``POST /search`` and ``POST /compare``."""

    model_config = _STRICT

    queries: StrictStr | list[StrictStr] = Field(description="One query text or a list of them.")
    k: StrictInt = Field(10, description="Results per query, 1 to the server's max_k.")
    encoders: list[StrictStr] | None = Field(
        None, description="Index encoders to use (keys or names); default all. The first is the raw column's."
    )
    transforms: Literal["all", "none"] | list[StrictStr] = Field(
        "all", description="Attached transforms to apply: 'all' (default), 'none' or a list of names."
    )
    compare: StrictBool = Field(
        False, description="Also return the raw encoder's results and each encoder's share of every score."
    )


class EmbedRequest(BaseModel):
    """``POST /embed``."""

    model_config = _STRICT

    texts: list[StrictStr] = Field(description="Texts to embed.")
    encoders: list[StrictStr] | None = Field(None, description="Index encoders (keys or names); default all.")
    kind: Literal["query", "doc"] = Field("query", description="Encode as queries or as documents.")


class DocumentIn(BaseModel):
    """One document to add."""

    model_config = _STRICT

    id: StrictStr = Field(min_length=1)
    text: StrictStr
    meta: dict[str, Any] = Field(default_factory=dict)


class AddRequest(BaseModel):
    """``POST /documents``."""

    model_config = _STRICT

    documents: list[DocumentIn]
    replace: StrictBool = Field(False, description="Replace documents whose id the index already holds.")


class RemoveRequest(BaseModel):
    """``DELETE /documents``."""

    model_config = _STRICT

    ids: list[StrictStr]


def check_texts(texts: str | list[str], config: ServeConfig, what: str = "queries") -> list[str]:
    """``texts`` as a list within the server's limits: 1 to max_queries, none empty, none too long."""
    items = [texts] if isinstance(texts, str) else list(texts)
    if not items:
        raise RequestError(f"{what} is empty: give at least one text")
    if len(items) > config.max_queries:
        raise RequestError(
            f"{what} has {len(items)} texts; the limit is {config.max_queries} per request (max_queries)"
        )
    for i, text in enumerate(items):
        if not text.strip():
            raise RequestError(f"{what}[{i}] is empty or whitespace")
        if len(text) > config.max_query_chars:
            raise RequestError(
                f"{what}[{i}] has {len(text):,} characters; the limit is {config.max_query_chars:,} (max_query_chars)"
            )
    return items


def check_k(k: int, config: ServeConfig) -> int:
    """``k`` within [1, max_k]."""
    if not 1 <= k <= config.max_k:
        raise RequestError(f"k must be between 1 and {config.max_k} (max_k); got {k}")
    return k
