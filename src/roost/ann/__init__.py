"""Embeddings and nearest-neighbour search: build, version, query and serve vector indexes."""

from __future__ import annotations

from roost._lazy import lazy_api

_API = {
    "Index": "roost.ann.index:Index",
    "SearchResult": "roost.ann.index:SearchResult",
    "brute_force": "roost.ann.brute:search",
    "recall": "roost.ann.brute:recall",
    "tune": "roost.ann.tuning:tune",
    "embed": "roost.ann.embeddings:embed",
    "read_embeddings": "roost.ann.embeddings:read_embeddings",
    "build_index": "roost.ann.repo:build_index",
    "update_index": "roost.ann.repo:update_index",
    "load_index": "roost.ann.repo:load_index",
    "list_indexes": "roost.ann.repo:list_indexes",
    "list_versions": "roost.ann.repo:list_versions",
    "resolve_index": "roost.ann.repo:resolve",
    "set_alias": "roost.ann.repo:set_alias",
}

__all__ = sorted(_API)
__getattr__, __dir__ = lazy_api(__name__, _API)
