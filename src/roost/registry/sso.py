"""Accounts of people who sign in through an OIDC provider: the link (issuer, subject) → account.

The subject (`sub`) is the provider's stable id of a person; the name shown is its `preferred_username` (else the
e-mail's local part, else the subject). A first login creates a password-less user account, or claims one an admin
made for it (`roost users add NAME --sso`); an account with a password, a service account or one already linked to
another subject is never taken over.
"""

from __future__ import annotations

import hashlib
import re
from typing import TYPE_CHECKING

from sqlalchemy import select

from roost.errors import RoostError
from roost.registry import objects
from roost.registry.accounts import AccountRecord, check_name, to_record
from roost.registry.store import utcnow
from roost.registry.tables import Account, StoredObject

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from roost.registry.store import Store

KIND = "server.oidc_subject"  # objects of this kind: name = sha256(issuer, subject), spec = {issuer, subject, account}
_UNSAFE = re.compile(r"[^A-Za-z0-9._@+-]")


class SsoRefused(RoostError):
    """The provider's person may not sign in as the account of that name (HTTP 403)."""

    status = 403


def _key(issuer: str, subject: str) -> str:
    return hashlib.sha256(f"{issuer}\0{subject}".encode()).hexdigest()


def account_name_for(claims: dict[str, object]) -> str:
    """The account name for an ID token's claims: preferred_username, else the e-mail's local part, else sub."""
    for raw in (claims.get("preferred_username"), str(claims.get("email") or "").split("@")[0], claims.get("sub")):
        name = _UNSAFE.sub("-", str(raw or "")).strip("-._@+")[:128]
        if name:
            return name
    raise RoostError("the provider's ID token names nobody (no sub)", hint="check the OIDC provider's claims")


def sso_account(store: Store, issuer: str, subject: str, name: str) -> AccountRecord:
    """The account linked to (issuer, subject), linking or creating it on first login (see the module's rules)."""
    check_name(name)
    key = _key(issuer, subject)
    with store.write() as s:
        link = objects.get(s, KIND, key, lock=True)
        if link is not None:
            acct = s.get(Account, int(str(link["account"])))
            if acct is None:
                raise SsoRefused(f"the account linked to {name!r} was removed", hint="ask an admin")
            return to_record(acct)
        acct = s.execute(select(Account).where(Account.name == name)).scalar_one_or_none()
        if acct is None:
            acct = Account(name=name, kind="user", password_hash=None, admin=False, created_at=utcnow())
            s.add(acct)
            s.flush()
        elif acct.kind != "user" or acct.password_hash is not None or _linked(s, acct.id):
            raise SsoRefused(
                f"the account name {name!r} is taken by an account that signs in otherwise",
                hint="sign in with its password, or ask an admin to create an SSO account (roost users add --sso)",
            )
        objects.put(s, KIND, key, {"issuer": issuer, "subject": subject, "account": acct.id}, new=True)
        return to_record(acct)


def _linked(s: Session, account_id: int) -> bool:
    specs = s.execute(select(StoredObject.spec).where(StoredObject.kind == KIND)).scalars()
    return any(spec.get("account") == account_id for spec in specs)
