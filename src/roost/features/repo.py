"""The one place feature definitions and watermarks touch the repository store (generic named JSON objects)."""

from __future__ import annotations

from typing import Any

KINDS = {
    "entity": "feature_entity",
    "source": "feature_source",
    "view": "feature_view",
    "watermark": "feature_watermark",
}


def _store() -> Any:
    from roost.registry.store import default_store

    return default_store()


def put(kind: str, name: str, spec: dict) -> None:
    """Insert or replace a definition or watermark."""
    _store().put_object(KINDS[kind], name, spec)


def get(kind: str, name: str) -> dict | None:
    """One definition or watermark, or None."""
    return _store().get_object(KINDS[kind], name)


def list_all(kind: str) -> dict[str, dict]:
    """All definitions of a kind, by name."""
    return _store().list_objects(KINDS[kind])


def delete(kind: str, name: str) -> None:
    """Remove a definition or watermark (no error when absent)."""
    _store().delete_object(KINDS[kind], name)
