"""Accounts of the team server: people (argon2id passwords) and service accounts, and their API tokens.

A token is `roost_<id>_<secret>`: the id is public (it names the token in lists and the audit log), the secret is
256 random bits of which only the SHA-256 is stored, so it is shown once, at creation. Groups and grants live in
roost.registry.grants, the audit log in roost.registry.audit_log.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from roost.errors import ConflictError, NotFoundError, RoostError
from roost.registry import auth_cache
from roost.registry.store import aware, utcnow
from roost.registry.tables import AccessToken, Account, GroupMember

if TYPE_CHECKING:
    from argon2 import PasswordHasher
    from sqlalchemy.orm import Session

    from roost.registry.store import Store

log = logging.getLogger(__name__)

KINDS = ("user", "service")
TOKEN_PREFIX = "roost_"
MIN_PASSWORD = 8
LAST_USED_EVERY = timedelta(seconds=60)  # a token's last_used_at is written at most once a minute
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}")
_TOKEN_ID = re.compile(r"[0-9a-f]{16}")
MEMO_SIZE = 4096  # verified (hash, password) pairs kept per process, so HTTP Basic clients skip argon2 per request
_MEMO_KEY = secrets.token_bytes(32)
_memo: dict[bytes, None] = {}
_hasher: PasswordHasher | None = None
_dummy_hash: str | None = None


@dataclass(frozen=True)
class AccountRecord:
    """One account as stored (never its password hash)."""

    id: int
    name: str
    kind: str
    admin: bool
    disabled: bool
    created_at: datetime


@dataclass(frozen=True)
class TokenRecord:
    """One API token as stored (never its secret)."""

    id: str
    account: str
    name: str | None
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None

    def state(self, now: datetime | None = None) -> str:
        """'active', 'expired' or 'revoked'."""
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= (now or utcnow()):
            return "expired"
        return "active"


@dataclass(frozen=True)
class NewToken:
    """A token just created: `token` is the only time the secret is visible."""

    token: str
    record: TokenRecord


def _ph() -> PasswordHasher:
    global _hasher
    if _hasher is None:
        from argon2 import PasswordHasher

        _hasher = PasswordHasher()  # argon2id, RFC 9106 low-memory profile
    return _hasher


def hash_password(password: str) -> str:
    """The argon2id hash of `password` (PHC string: $argon2id$v=19$m=…,t=…,p=…$salt$hash)."""
    if len(password) < MIN_PASSWORD:
        raise RoostError(
            f"password too short ({len(password)} characters; at least {MIN_PASSWORD})",
            hint="choose a longer password (a passphrase of several words is best)",
        )
    return _ph().hash(password)


def check_name(name: str, what: str = "account") -> str:
    """`name` when it is a valid account or group name, else a RoostError naming the rule."""
    if not _NAME.fullmatch(name):
        raise RoostError(
            f"invalid {what} name {name[:140]!r}",
            hint="1-128 characters: letters, digits and . _ @ + - (starting with a letter or digit)",
        )
    return name


def to_record(a: Account) -> AccountRecord:
    """The typed record of an account row."""
    created = aware(a.created_at)
    assert created is not None
    return AccountRecord(a.id, a.name, a.kind, bool(a.admin), bool(a.disabled), created)


def _find(s: Session, name: str) -> Account:
    acct = s.execute(select(Account).where(Account.name == name)).scalar_one_or_none()
    if acct is None:
        raise NotFoundError(f"no account named {name!r}", hint="list them: roost users list")
    return acct


def _create(store: Store, name: str, kind: str, password_hash: str | None, admin: bool) -> AccountRecord:
    check_name(name)
    try:
        with store.write() as s:
            acct = Account(name=name, kind=kind, password_hash=password_hash, admin=admin, created_at=utcnow())
            s.add(acct)
            s.flush()
            return to_record(acct)
    except IntegrityError:
        raise ConflictError(f"an account named {name!r} exists", hint="choose another name") from None


def create_user(store: Store, name: str, password: str | None, admin: bool = False) -> AccountRecord:
    """Create a person's account with a password (stored as an argon2id hash); None: no password, the person
    signs in through the OIDC provider only (the first OIDC login with this name claims the account)."""
    return _create(store, name, "user", None if password is None else hash_password(password), admin)


def create_service_account(store: Store, name: str, admin: bool = False) -> AccountRecord:
    """Create a service account: no password, it signs in with tokens only (`create_token`)."""
    return _create(store, name, "service", None, admin)


def get_account(store: Store, name: str) -> AccountRecord:
    """One account by name (NotFoundError when missing)."""
    with store.read() as s:
        return to_record(_find(s, name))


def account_by_id(store: Store, account_id: int) -> AccountRecord | None:
    """One account by id, or None (a UI session's account, looked up on every request)."""
    with store.read() as s:
        acct = s.get(Account, account_id)
        return None if acct is None else to_record(acct)


def list_accounts(store: Store) -> list[AccountRecord]:
    """Every account, by name."""
    with store.read() as s:
        return [to_record(a) for a in s.execute(select(Account).order_by(Account.name)).scalars()]


def _set(store: Store, name: str, **values: Any) -> AccountRecord:
    with store.write() as s:
        acct = _find(s, name)
        for k, v in values.items():
            setattr(acct, k, v)
        s.flush()
        auth_cache.notify(s)  # every server process forgets what it cached of this account
        return to_record(acct)


def set_disabled(store: Store, name: str, disabled: bool = True) -> AccountRecord:
    """Disable (or enable) an account: a disabled account's password, tokens and sessions are refused."""
    return _set(store, name, disabled=disabled)


def set_admin(store: Store, name: str, admin: bool = True) -> AccountRecord:
    """Make an account an admin (or take it back)."""
    return _set(store, name, admin=admin)


def set_password(store: Store, name: str, password: str) -> AccountRecord:
    """Set a person's password (service accounts have none)."""
    with store.read() as s:
        if _find(s, name).kind != "user":
            raise RoostError(f"{name!r} is a service account", hint="service accounts sign in with tokens")
    return _set(store, name, password_hash=hash_password(password))


def _dummy() -> str:
    global _dummy_hash
    if _dummy_hash is None:
        _dummy_hash = _ph().hash(secrets.token_urlsafe(16))
    return _dummy_hash


def _dummy_verify(password: str) -> None:
    """Spend what a real check costs, so the answer's timing does not tell whether the account exists."""
    from argon2.exceptions import VerificationError

    try:
        _ph().verify(_dummy(), password)
    except VerificationError:
        pass


def verify_password(store: Store, name: str, password: str) -> AccountRecord | None:
    """The account when `password` is right and the account may sign in (a person, not disabled), else None."""
    from argon2.exceptions import InvalidHashError, VerificationError

    _dummy()  # made before the lookup: the first unknown name costs what any other check costs
    with store.read() as s:
        acct = s.execute(select(Account).where(Account.name == name)).scalar_one_or_none()
        found = None if acct is None else (to_record(acct), acct.password_hash)
    stored = None if found is None else found[1]
    if found is None or stored is None or found[0].disabled:
        _dummy_verify(password)
        return None
    rec = found[0]
    memo = hmac.new(_MEMO_KEY, stored.encode() + b"\0" + password.encode("utf-8", "replace"), "sha256").digest()
    if memo in _memo:  # this very password was verified against this very hash (a changed password misses)
        return rec
    try:
        _ph().verify(stored, password)
    except (VerificationError, InvalidHashError):
        return None
    if len(_memo) >= MEMO_SIZE:
        _memo.clear()
    _memo[memo] = None
    if _ph().check_needs_rehash(stored):
        _set(store, name, password_hash=_ph().hash(password))
    return rec


# -- tokens ----------------------------------------------------------------------------------------------------
def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "replace")).hexdigest()


def _token_record(t: AccessToken, account: str) -> TokenRecord:
    created = aware(t.created_at)
    assert created is not None
    return TokenRecord(t.id, account, t.name, created, aware(t.expires_at), aware(t.revoked_at), aware(t.last_used_at))


def create_token(store: Store, account: str, name: str | None = None, expires_in: timedelta | None = None) -> NewToken:
    """A new API token for `account` (its full text is returned once; only a hash of its secret is kept)."""
    if expires_in is not None and expires_in <= timedelta(0):
        raise RoostError("a token's lifetime must be positive", hint="e.g. --expires 30d")
    token_id, secret = secrets.token_hex(8), secrets.token_urlsafe(32)
    now = utcnow()
    with store.write() as s:
        acct = _find(s, account)
        row = AccessToken(
            id=token_id,
            account_id=acct.id,
            secret_hash=_digest(secret),
            name=name,
            created_at=now,
            expires_at=None if expires_in is None else now + expires_in,
        )
        s.add(row)
        s.flush()
        rec = _token_record(row, acct.name)
    return NewToken(f"{TOKEN_PREFIX}{token_id}_{secret}", rec)


def split_token(token: str) -> tuple[str, str] | None:
    """(id, secret) of a `roost_<id>_<secret>` token, or None when it does not look like one."""
    if not token.startswith(TOKEN_PREFIX):
        return None
    token_id, sep, secret = token[len(TOKEN_PREFIX) :].partition("_")
    if not sep or not secret or not _TOKEN_ID.fullmatch(token_id):
        return None
    return token_id, secret


def verify_token(store: Store, token: str) -> AccountRecord | None:
    """The token's account when the token is known, its secret right (constant-time compare), not expired nor
    revoked and its account not disabled; else None. Records when it was last used (at most once a minute)."""
    found = token_account(store, token)
    return None if found is None else found[0]


def token_account(store: Store, token: str) -> tuple[AccountRecord, tuple[int, ...]] | None:
    """verify_token's account with the ids of its groups, read in the same query (one round trip a request), or
    taken from the server process's auth cache (roost.registry.auth_cache: no round trip)."""
    parts = split_token(token)
    token_id, secret = parts if parts is not None else ("", token)
    digest = _digest(secret)
    cache = auth_cache.cache_for(store.url)
    key = ("token", token_id)
    entry: _TokenEntry | None = None if cache is None else cache.get(key)
    if entry is None:
        generation = None if cache is None else cache.generation()
        entry = _read_token(store, token_id)
        if entry is not None and cache is not None:
            cache.put(generation, key, entry)
    stored = entry[0] if entry is not None else "0" * 64
    same = hmac.compare_digest(digest.encode(), stored.encode())
    if entry is None or not same:
        return None
    _, acct, groups, expires, revoked, used = entry
    now = utcnow()
    if revoked is not None or (expires is not None and expires <= now) or acct.disabled:
        return None
    if used is None or now - used >= LAST_USED_EVERY:
        with store.write() as s:
            s.execute(update(AccessToken).where(AccessToken.id == token_id).values(last_used_at=now))
        if cache is not None:  # not an auth change (no notification): this process's entry is updated in place
            cache.put(cache.generation(), key, (*entry[:5], now))
    return acct, groups


# (secret hash, account, its group ids, expires_at, revoked_at, last_used_at) of a token
_TokenEntry = tuple[str, AccountRecord, tuple[int, ...], datetime | None, datetime | None, datetime | None]


def _read_token(store: Store, token_id: str) -> _TokenEntry | None:
    with store.read() as s:
        rows = s.execute(
            select(AccessToken, Account, GroupMember.group_id)
            .join(Account, Account.id == AccessToken.account_id)
            .outerjoin(GroupMember, GroupMember.account_id == Account.id)
            .where(AccessToken.id == token_id)
        ).all()
        if not rows:
            return None
        tok, acct = rows[0][0], to_record(rows[0][1])
        groups = tuple(sorted(g for _, _, g in rows if g is not None))
        return tok.secret_hash, acct, groups, aware(tok.expires_at), aware(tok.revoked_at), aware(tok.last_used_at)


def list_tokens(store: Store, account: str | None = None) -> list[TokenRecord]:
    """Tokens (of one account, or all), newest first."""
    with store.read() as s:
        q = select(AccessToken, Account.name).join(Account, Account.id == AccessToken.account_id)
        if account is not None:
            q = q.where(Account.id == _find(s, account).id)
        rows = s.execute(q.order_by(AccessToken.created_at.desc(), AccessToken.id)).all()
        return [_token_record(t, n) for t, n in rows]


def revoke_token(store: Store, token_id: str) -> TokenRecord:
    """Revoke a token by its id (the part after `roost_`); it is refused from the next request on."""
    parts = split_token(token_id)
    token_id = parts[0] if parts is not None else token_id
    with store.write() as s:
        row = s.execute(
            select(AccessToken, Account.name)
            .join(Account, Account.id == AccessToken.account_id)
            .where(AccessToken.id == token_id)
        ).first()
        if row is None:
            raise NotFoundError(f"no token with id {token_id[:40]!r}", hint="list them: roost tokens list")
        tok, owner = row
        if tok.revoked_at is None:
            tok.revoked_at = utcnow()
            s.flush()
            auth_cache.notify(s)  # refused from the next request on, in every server process
        return _token_record(tok, owner)
