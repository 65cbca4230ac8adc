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


def test_every_module_declares_its_public_names():
    """Each module of roost.features and roost.datasets has an __all__ whose names all exist."""
    import importlib
    import pkgutil

    import roost.datasets
    import roost.features
    import roost.features.online_stores

    for pkg in (roost.features, roost.features.online_stores, roost.datasets):
        for info in pkgutil.iter_modules(pkg.__path__, pkg.__name__ + "."):
            mod = importlib.import_module(info.name)
            names = getattr(mod, "__all__", None)
            assert names, f"{info.name} has no __all__"
            missing = [n for n in names if not hasattr(mod, n)]
            assert not missing, (info.name, missing)


def test_importing_a_submodule_keeps_the_function_of_the_same_name():
    """`roost.features.apply` / `.materialize` / `.push` stay the functions after their modules were imported directly
    (first, or after the package)."""
    import subprocess
    import sys

    for first in ("", "import roost.features\n"):
        code = first + (
            "import importlib\n"
            "import roost.features.apply, roost.features.materialize, roost.features.push\n"
            "importlib.import_module('roost.features.push')\n"
            "import roost.features as F\n"
            "from roost.features import apply, materialize, push\n"
            "assert all(callable(f) for f in (apply, materialize, push, F.apply, F.materialize, F.push))\n"
            "assert 'duckdb' not in __import__('sys').modules and 'pyarrow' not in __import__('sys').modules\n"
        )
        res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
        assert res.returncode == 0, res.stderr
