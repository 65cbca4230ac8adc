"""roost.server.permissions against a table written here by hand: user grant, group grant, both, none (default
read or none), admin; require/require_admin/on_create; a revoke takes effect on the next check."""

from __future__ import annotations

from typing import Any

import pytest

PASSWORD = "correct horse battery"

# (own grant, grants of the account's groups, default role, admin) -> the role the rules give
TABLE: list[tuple[str | None, tuple[str, ...], str, bool, str]] = [
    (None, (), "read", False, "read"),
    (None, (), "none", False, "none"),
    ("read", (), "none", False, "read"),
    ("edit", (), "none", False, "edit"),
    ("manage", (), "read", False, "manage"),
    (None, ("edit",), "none", False, "edit"),
    (None, ("read",), "read", False, "read"),
    (None, ("read", "manage"), "none", False, "manage"),  # two groups: the higher one
    ("read", ("edit",), "none", False, "edit"),  # both: the higher one
    ("manage", ("read",), "none", False, "manage"),
    ("edit", ("edit",), "read", False, "edit"),
    ("none", (), "read", False, "none"),  # an explicit none shuts out where the default is read
    ("none", ("edit",), "read", False, "edit"),  # …but a group's grant still counts
    (None, (), "none", True, "manage"),  # admin
    ("read", ("read",), "none", True, "manage"),
    ("none", (), "none", True, "manage"),
]


@pytest.fixture
def store(ws: Any) -> Any:
    from roost.registry.store import default_store

    return default_store()


def identity_for(store: Any, name: str, admin: bool = False) -> Any:
    from roost.registry import accounts, grants
    from roost.server.identity import Identity

    acct = accounts.get_account(store, name)
    return Identity(acct.name, acct.id, acct.kind, admin, grants.group_ids_of(store, acct.id))


@pytest.mark.parametrize(("own", "groups", "default", "admin", "expected"), TABLE)
def test_role_on_table(store: Any, own: Any, groups: Any, default: str, admin: bool, expected: str) -> None:
    from roost.registry import accounts, grants
    from roost.server.permissions import role_on

    accounts.create_user(store, "u", PASSWORD, admin=admin)
    accounts.create_user(store, "other", PASSWORD)
    if own is not None:
        grants.grant(store, "u", "experiment", "churn", own)
    for i, role in enumerate(groups):
        grants.create_group(store, f"g{i}")
        grants.add_member(store, f"g{i}", "u")
        grants.grant(store, f"group:g{i}", "experiment", "churn", role)
    # noise that must not count: same name another kind, another resource, another account, a group u is not in
    grants.grant(store, "u", "model", "churn", "manage")
    grants.grant(store, "u", "experiment", "churn2", "manage")
    grants.grant(store, "other", "experiment", "churn", "manage")
    grants.create_group(store, "outsiders")
    grants.grant(store, "group:outsiders", "experiment", "churn", "manage")
    who = identity_for(store, "u", admin)
    assert role_on(store, who, "experiment", "churn", default) == expected


def test_require_and_require_admin(store: Any) -> None:
    from roost.registry import accounts, grants
    from roost.server.identity import Forbidden
    from roost.server.permissions import require, require_admin

    accounts.create_user(store, "bob", PASSWORD)
    bob = identity_for(store, "bob")
    grants.grant(store, "bob", "model", "ranker", "edit")
    assert require(store, bob, "model", "ranker", "edit") == "edit"
    with pytest.raises(Forbidden) as err:
        require(store, bob, "model", "ranker", "manage")
    assert err.value.status == 403
    assert "manage" in err.value.message and "'ranker'" in err.value.message and "has edit" in err.value.message
    assert require(store, bob, "experiment", "x", "read", default_role="read") == "read"
    with pytest.raises(Forbidden):
        require(store, bob, "experiment", "x", "read", default_role="none")
    with pytest.raises(Forbidden, match="not an admin"):
        require_admin(bob)
    require_admin(identity_for(store, "bob", admin=True))


def test_revoke_and_membership_changes_take_effect_at_once(store: Any) -> None:
    from roost.registry import accounts, grants
    from roost.server.permissions import role_on

    accounts.create_user(store, "bob", PASSWORD)
    bob = identity_for(store, "bob")
    grants.create_group(store, "ml")
    grants.grant(store, "group:ml", "experiment", "e", "edit")
    assert role_on(store, bob, "experiment", "e", "none") == "none"
    grants.add_member(store, "ml", "bob")
    assert role_on(store, bob, "experiment", "e", "none") == "edit"  # same Identity object: nothing cached
    grants.remove_member(store, "ml", "bob")
    assert role_on(store, bob, "experiment", "e", "none") == "none"
    grants.grant(store, "bob", "experiment", "e", "manage")
    assert role_on(store, bob, "experiment", "e", "none") == "manage"
    grants.revoke(store, "bob", "experiment", "e")
    assert role_on(store, bob, "experiment", "e", "none") == "none"


def test_creator_gets_manage(store: Any) -> None:
    from roost.registry import accounts, grants
    from roost.server.permissions import on_create, role_on

    accounts.create_user(store, "bob", PASSWORD)
    bob = identity_for(store, "bob")
    grants.grant(store, "bob", "model", "m", "read")
    on_create(store, bob, "model", "m")
    on_create(store, bob, "experiment", "e")
    assert role_on(store, bob, "model", "m", "none") == "manage"
    assert role_on(store, bob, "experiment", "e", "none") == "manage"
    assert [(g.principal, g.resource, g.role) for g in grants.list_grants(store, principal="bob")] == [
        ("bob", "experiment:e", "manage"),
        ("bob", "model:m", "manage"),
    ]


def test_role_check_sees_a_grant_made_by_another_process(ws: Any, tmp_path: Any) -> None:
    """Several server workers share the store: a grant written by one process counts in another at once."""
    import subprocess
    import sys

    from roost.registry import accounts
    from roost.registry.store import default_store
    from roost.server.permissions import role_on

    store = default_store()
    accounts.create_user(store, "bob", PASSWORD)
    bob = identity_for(store, "bob")
    assert role_on(store, bob, "experiment", "e", "none") == "none"
    code = (
        "from roost.registry.store import open_store; from roost.registry import grants; "
        f"grants.grant(open_store({store.url!r}), 'bob', 'experiment', 'e', 'edit')"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
    assert role_on(store, bob, "experiment", "e", "none") == "edit"
