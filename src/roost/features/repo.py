"""The one place feature definitions and watermarks touch the repository store (generic named JSON objects)."""

from __future__ import annotations

from typing import Any

KINDS = {
    "entity": "feature_entity",
    "source": "feature_source",
    "view": "feature_view",
    "request_view": "feature_request_view",
    "watermark": "feature_watermark",
}


__all__ = ["put", "get", "list_all", "delete"]


def _store() -> Any:
    from roost.registry.backend import default_store  # the workspace's store, or the roost server's

    return default_store()


def put(kind: str, name: str, spec: dict[str, Any]) -> None:
    """Insert or replace a definition or watermark."""
    _store().put_object(KINDS[kind], name, spec)


def get(kind: str, name: str) -> dict[str, Any] | None:
    """One definition or watermark, or None."""
    spec: dict[str, Any] | None = _store().get_object(KINDS[kind], name)
    return spec


def list_all(kind: str) -> dict[str, dict[str, Any]]:
    """All definitions of a kind, by name."""
    specs: dict[str, dict[str, Any]] = _store().list_objects(KINDS[kind])
    return specs


def delete(kind: str, name: str) -> None:
    """Remove a definition or watermark (no error when absent)."""
    _store().delete_object(KINDS[kind], name)
