"""The URL-scheme table of online stores: every scheme resolves to an OnlineStore, unknown ones are refused."""

from __future__ import annotations

import pytest

from roost.errors import ConfigError


def test_every_scheme_resolves_to_an_online_store():
    from roost.features.online_stores import SCHEMES, OnlineStore, store_class

    for scheme in SCHEMES:
        cls = store_class(f"{scheme}://x")
        assert issubclass(cls, OnlineStore) and not getattr(cls, "__abstractmethods__", None), scheme
    assert store_class("sqlite:///a.db").__name__ == "SQLiteOnlineStore"
    assert store_class("REDIS://h:1/0").__name__ == "RedisOnlineStore"


@pytest.mark.parametrize("url", ["postgres://h/db", "online.db", "sqlite://relative.db", ""])
def test_unknown_or_pathless_urls_are_refused(tmp_path, url):
    from roost.features.online_stores import open_online_store

    with pytest.raises(ConfigError) as e:
        open_online_store(url)
    assert url in e.value.message and "sqlite:///" in (e.value.hint or "")


def test_sqlite_store_is_cached_per_url(tmp_path):
    from roost.features.online_stores import open_online_store, reset_online_stores

    url = f"sqlite:///{tmp_path}/online.db"
    try:
        st = open_online_store(url)
        assert st is open_online_store(url) and st.url == url
        assert type(st).__name__ == "SQLiteOnlineStore"
    finally:
        reset_online_stores()
