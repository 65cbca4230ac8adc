"""Accounts and tokens of the team server (roost.registry.accounts) and their CLI: argon2id hashes, tokens hashed at
rest and shown once, expired/revoked/disabled refused, constant-time compares."""

from __future__ import annotations

import hashlib
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

PASSWORD = "correct horse battery"


def db_path(store: Any) -> Path:
    """The SQLite file behind a store."""
    return Path(store.engine.url.database)


def sql(store: Any, query: str, *args: Any) -> list[tuple[Any, ...]]:
    """Run SQL on the store's file with sqlite3 (independent of roost's code)."""
    store.engine.dispose()
    with sqlite3.connect(db_path(store)) as con:
        rows = con.execute(query, args).fetchall()
    con.close()
    return rows


@pytest.fixture
def store(ws: Any) -> Any:
    from roost.registry.store import default_store

    return default_store()


def test_password_stored_as_argon2id_and_checked(store: Any) -> None:
    from argon2 import PasswordHasher

    from roost.registry import accounts

    accounts.create_user(store, "alice", PASSWORD)
    [(stored,)] = sql(store, "SELECT password_hash FROM accounts WHERE name='alice'")
    assert stored.startswith("$argon2id$v=19$m=")  # PHC string of argon2id
    assert PASSWORD not in stored
    assert PasswordHasher().verify(stored, PASSWORD)  # the library itself agrees
    assert accounts.verify_password(store, "alice", PASSWORD).name == "alice"
    assert accounts.verify_password(store, "alice", PASSWORD + "x") is None
    assert accounts.verify_password(store, "nobody", PASSWORD) is None
    with pytest.raises(Exception, match="too short"):
        accounts.create_user(store, "bob", "short")
    with pytest.raises(Exception, match="exists"):
        accounts.create_user(store, "alice", PASSWORD)
    with pytest.raises(Exception, match="invalid account name"):
        accounts.create_user(store, "group:x", PASSWORD)


def test_unknown_service_and_disabled_accounts_pay_a_dummy_hash(store: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Timing must not tell which names exist: a password check runs for unknown names too."""
    from argon2 import PasswordHasher

    from roost.registry import accounts

    accounts.create_user(store, "alice", PASSWORD)
    accounts.create_service_account(store, "ci")
    accounts.create_user(store, "gone", PASSWORD)
    accounts.set_disabled(store, "gone")
    calls: list[str] = []
    real = PasswordHasher.verify

    def spy(self: Any, hash: Any, password: Any) -> Any:
        calls.append(password)
        return real(self, hash, password)

    monkeypatch.setattr(PasswordHasher, "verify", spy)
    for name in ("nobody", "ci", "gone"):
        calls.clear()
        assert accounts.verify_password(store, name, PASSWORD) is None
        assert calls == [PASSWORD], name


def test_token_shown_once_and_only_its_hash_stored(store: Any) -> None:
    from roost.registry import accounts

    accounts.create_service_account(store, "ci")
    new = accounts.create_token(store, "ci", name="build", expires_in=timedelta(days=30))
    prefix, token_id, secret = new.token.split("_", 2)
    assert prefix == "roost" and token_id == new.record.id and len(secret) >= 43  # 32 random bytes, base64url
    [(stored_hash,)] = sql(store, "SELECT secret_hash FROM access_tokens WHERE id=?", token_id)
    assert stored_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert accounts.verify_token(store, new.token).name == "ci"
    listed = accounts.list_tokens(store)
    assert [t.id for t in listed] == [token_id] and secret not in repr(listed)
    store.engine.dispose()
    raw = db_path(store).read_bytes() + b"".join(p.read_bytes() for p in db_path(store).parent.glob("*.db-wal"))
    assert secret.encode() not in raw and new.token.encode() not in raw


def test_expired_revoked_disabled_and_forged_tokens_refused(store: Any) -> None:
    from roost.registry import accounts

    accounts.create_user(store, "alice", PASSWORD)
    expired = accounts.create_token(store, "alice", expires_in=timedelta(days=1))
    past = (datetime.now(UTC) - timedelta(seconds=1)).strftime("%Y-%m-%d %H:%M:%S.%f")
    sql_update(store, "UPDATE access_tokens SET expires_at=? WHERE id=?", past, expired.record.id)
    assert accounts.verify_token(store, expired.token) is None
    assert accounts.list_tokens(store, "alice")[0].state() == "expired"

    revoked = accounts.create_token(store, "alice")
    assert accounts.verify_token(store, revoked.token) is not None
    accounts.revoke_token(store, revoked.record.id)
    assert accounts.verify_token(store, revoked.token) is None

    live = accounts.create_token(store, "alice")
    accounts.set_disabled(store, "alice")
    assert accounts.verify_token(store, live.token) is None
    accounts.set_disabled(store, "alice", False)
    assert accounts.verify_token(store, live.token) is not None
    _, tid, secret = live.token.split("_", 2)
    for forged in (f"roost_{tid}_{secret[:-1]}x", f"roost_{'0' * 16}_{secret}", secret, "", "roost_", f"roost_{tid}"):
        assert accounts.verify_token(store, forged) is None, forged
    with pytest.raises(Exception, match="no token"):
        accounts.revoke_token(store, "0" * 16)


def sql_update(store: Any, query: str, *args: Any) -> None:
    store.engine.dispose()
    with sqlite3.connect(db_path(store)) as con:
        con.execute(query, args)
    con.close()


def test_token_secret_compared_in_constant_time(store: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """hmac.compare_digest decides, for a known id and for an unknown one (same work either way)."""
    import hmac

    from roost.registry import accounts

    accounts.create_user(store, "alice", PASSWORD)
    new = accounts.create_token(store, "alice")
    seen: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: Any, b: Any) -> bool:
        seen.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    assert accounts.verify_token(store, new.token) is not None
    assert accounts.verify_token(store, "roost_" + "1" * 16 + "_nope") is None
    assert len(seen) == 2
    assert seen[0][0] == hashlib.sha256(new.token.split("_", 2)[2].encode()).hexdigest().encode()


def test_last_used_written_at_most_once_a_minute(store: Any) -> None:
    from roost.registry import accounts

    accounts.create_user(store, "alice", PASSWORD)
    new = accounts.create_token(store, "alice")
    accounts.verify_token(store, new.token)
    [(first,)] = sql(store, "SELECT last_used_at FROM access_tokens")
    assert first is not None
    accounts.verify_token(store, new.token)
    assert sql(store, "SELECT last_used_at FROM access_tokens") == [(first,)]
    old = (datetime.now(UTC) - timedelta(minutes=2)).strftime("%Y-%m-%d %H:%M:%S.%f")
    sql_update(store, "UPDATE access_tokens SET last_used_at=?", old)
    accounts.verify_token(store, new.token)
    [(later,)] = sql(store, "SELECT last_used_at FROM access_tokens")
    assert later > old


def test_changed_password_is_not_served_from_the_memo(store: Any) -> None:
    from roost.registry import accounts

    accounts.create_user(store, "alice", PASSWORD)
    assert accounts.verify_password(store, "alice", PASSWORD) is not None
    accounts.set_password(store, "alice", "another passphrase")
    assert accounts.verify_password(store, "alice", PASSWORD) is None
    assert accounts.verify_password(store, "alice", "another passphrase") is not None


# -- CLI -------------------------------------------------------------------------------------------------------
def invoke(args: list[str], input: str | None = None) -> Any:
    from typer.testing import CliRunner

    from roost.cli.main import build_app

    return CliRunner().invoke(build_app(), args, input=input)


def test_cli_users_tokens_groups_grants(ws: Any) -> None:
    from roost.registry import accounts
    from roost.registry.store import default_store

    res = invoke(["users", "add", "alice", "--admin"], input=f"{PASSWORD}\n{PASSWORD}\n")  # prompted twice
    assert res.exit_code == 0, res.output
    assert accounts.verify_password(default_store(), "alice", PASSWORD).admin
    res = invoke(["users", "add", "bob", "--password-stdin"], input=PASSWORD + "\n")
    assert res.exit_code == 0 and PASSWORD not in res.output
    assert invoke(["users", "add", "carol", "--password", PASSWORD]).exit_code == 2  # no password on argv
    assert invoke(["users", "add", "ci", "--service"]).exit_code == 0
    res = invoke(["tokens", "create", "--user", "ci", "--expires", "30d"])
    assert res.exit_code == 0
    token = res.stdout.strip().splitlines()[0]
    assert accounts.verify_token(default_store(), token).name == "ci"
    listed = invoke(["tokens", "list", "--json"])
    assert token.split("_", 2)[2] not in listed.output and token.split("_")[1] in listed.output
    assert invoke(["groups", "add", "ml"]).exit_code == 0
    assert invoke(["groups", "add-member", "ml", "bob"]).exit_code == 0
    assert invoke(["grant", "group:ml", "edit", "experiment:churn"]).exit_code == 0
    assert invoke(["grant", "ci", "read", "model:ranker"]).exit_code == 0
    res = invoke(["grants", "--json"])
    assert '"principal": "group:ml"' in res.output and '"resource_name": "ranker"' in res.output
    assert invoke(["revoke", "ci", "model:ranker"]).exit_code == 0
    assert invoke(["tokens", "revoke", token.split("_")[1]]).exit_code == 0
    assert accounts.verify_token(default_store(), token) is None
    assert invoke(["users", "disable", "bob"]).exit_code == 0
    assert accounts.verify_password(default_store(), "bob", PASSWORD) is None
    assert invoke(["audit", "--json", "--since", "1h"]).exit_code == 0


def test_cli_errors_and_help(ws: Any, cli: Any) -> None:
    code, _, err = cli("grant", "nobody", "read", "experiment:x")
    assert code == 2 and "no account named 'nobody'" in err
    code, _, err = cli("grant", "group:nope", "read", "experiment:x")
    assert code == 2 and "no group" in err
    code, _, err = cli("audit", "--since", "yesterday")
    assert code == 2 and "neither a duration nor a date" in err
    for verb in (
        ["users"], ["users", "add"], ["users", "list"], ["users", "disable"], ["users", "enable"],
        ["users", "set-admin"], ["tokens", "create"], ["tokens", "list"], ["tokens", "revoke"], ["groups", "add"],
        ["groups", "add-member"], ["groups", "remove-member"], ["groups", "list"], ["grant"], ["revoke"],
        ["grants"], ["audit"],
    ):  # fmt: skip
        res = invoke([*verb, "--help"])
        assert res.exit_code == 0 and "Traceback" not in res.output, verb
