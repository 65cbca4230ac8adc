"""`roost users|tokens|groups|grant|revoke|grants|audit`: accounts, roles and the audit log of a team server.

They act directly on the server's store (run them on the server host; `--store URL` names it when it is not the
workspace's), so they work before the first account exists — how the first admin is made.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import typer

from roost.cli.output import LIMIT, ORDER_BY

if TYPE_CHECKING:
    from roost.registry.store import Store

users_app = typer.Typer(help="Team server accounts: add, list, disable, enable, set-admin.", no_args_is_help=True)
tokens_app = typer.Typer(help="API tokens of team server accounts: create, list, revoke.", no_args_is_help=True)
groups_app = typer.Typer(help="Groups of accounts: add, add-member, remove-member, list.", no_args_is_help=True)

STORE_HELP = "the server's store URL (default: the workspace's store)"


def register(app: typer.Typer) -> None:
    """Add the users, tokens and groups groups and the grant, revoke, grants and audit commands."""
    app.add_typer(users_app, name="users")
    app.add_typer(tokens_app, name="tokens")
    app.add_typer(groups_app, name="groups")
    app.command("grant")(grant_cmd)
    app.command("revoke")(revoke_cmd)
    app.command("grants")(grants_cmd)
    app.command("audit")(audit_cmd)


def _store(url: str | None) -> Store:
    from roost import workspace
    from roost.registry.store import open_store

    return open_store(url or workspace.current().store_url)


def _when(dt: datetime | None) -> str:
    return "" if dt is None else dt.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def _json(records: list[Any]) -> None:
    from dataclasses import asdict

    from roost.cli.output import print_json

    print_json([asdict(r) for r in records])


def _say(as_json: bool, rec: Any, line: str) -> None:
    """What a verb changed: the record as JSON with --json, else one line."""
    from dataclasses import asdict, is_dataclass

    from roost.cli.output import echo, print_json

    if as_json:
        print_json(asdict(rec) if is_dataclass(rec) and not isinstance(rec, type) else rec)
    else:
        echo(line)


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        line = sys.stdin.readline()
        return line[:-1] if line.endswith("\n") else line
    return str(typer.prompt("Password", hide_input=True, confirmation_prompt=True))


# -- users -----------------------------------------------------------------------------------------------------
@users_app.command("add")
def users_add(
    name: str = typer.Argument(..., help="account name (letters, digits, . _ @ + -)"),
    admin: bool = typer.Option(False, "--admin", help="an admin: manages accounts, grants, gc and the audit log"),
    service: bool = typer.Option(False, "--service", help="a service account: no password, tokens only"),
    sso: bool = typer.Option(False, "--sso", help="no password: the person signs in through the OIDC provider"),
    password_stdin: bool = typer.Option(False, "--password-stdin", help="read the password from stdin's first line"),
    as_json: bool = typer.Option(False, "--json", help="machine-readable output"),
    store: str | None = typer.Option(None, "--store", help=STORE_HELP),
) -> None:
    """Create an account (asks for the password; never pass one on the command line)."""
    from roost.registry import accounts

    st = _store(store)
    if service:
        rec = accounts.create_service_account(st, name, admin=admin)
        _say(
            as_json, rec, f"created service account {rec.name}; give it a token: roost tokens create --user {rec.name}"
        )
        return
    rec = accounts.create_user(st, name, None if sso else _read_password(password_stdin), admin=admin)
    how = " (signs in through the OIDC provider; its first sign-in there claims this account)" if sso else ""
    _say(as_json, rec, f"created {'admin ' if rec.admin else ''}user {rec.name}{how}")


@users_app.command("list")
def users_list(
    limit: int | None = LIMIT,
    order_by: str | None = ORDER_BY,
    as_json: bool = typer.Option(False, "--json", help="machine-readable output"),
    store: str | None = typer.Option(None, "--store", help=STORE_HELP),
) -> None:
    """List accounts."""
    from dataclasses import asdict

    from roost.cli.output import print_table, sort_limit
    from roost.registry import accounts

    recs = sort_limit(accounts.list_accounts(_store(store)), order_by, limit, asdict)
    if as_json:
        _json(recs)
        return
    rows = [
        (r.name, r.kind, "yes" if r.admin else "", "disabled" if r.disabled else "", _when(r.created_at)) for r in recs
    ]
    print_table(None, ["name", "kind", "admin", "state", "created (UTC)"], rows)


def _toggle(name: str, store: str | None, what: str, value: bool, as_json: bool) -> None:
    from roost.registry import accounts

    st = _store(store)
    if what == "disabled":
        rec = accounts.set_disabled(st, name, value)
        _say(
            as_json,
            rec,
            f"{rec.name} {'disabled: its password, tokens and sessions are refused' if value else 'enabled'}",
        )
    else:
        rec = accounts.set_admin(st, name, value)
        _say(as_json, rec, f"{rec.name} is {'now' if value else 'no longer'} an admin")


@users_app.command("disable")
def users_disable(
    name: str = typer.Argument(..., help="account name"),
    as_json: bool = typer.Option(False, "--json", help="machine-readable output"),
    store: str | None = typer.Option(None, "--store", help=STORE_HELP),
) -> None:
    """Disable an account (its password, tokens and UI sessions stop working at once)."""
    _toggle(name, store, "disabled", True, as_json)


@users_app.command("enable")
def users_enable(
    name: str = typer.Argument(..., help="account name"),
    as_json: bool = typer.Option(False, "--json", help="machine-readable output"),
    store: str | None = typer.Option(None, "--store", help=STORE_HELP),
) -> None:
    """Enable a disabled account."""
    _toggle(name, store, "disabled", False, as_json)


@users_app.command("set-admin")
def users_set_admin(
    name: str = typer.Argument(..., help="account name"),
    revoke: bool = typer.Option(False, "--revoke", help="take admin away instead"),
    as_json: bool = typer.Option(False, "--json", help="machine-readable output"),
    store: str | None = typer.Option(None, "--store", help=STORE_HELP),
) -> None:
    """Make an account an admin (or, with --revoke, take it back)."""
    _toggle(name, store, "admin", not revoke, as_json)


@users_app.command("set-password")
def users_set_password(
    name: str = typer.Argument(..., help="account name"),
    password_stdin: bool = typer.Option(False, "--password-stdin", help="read the password from stdin's first line"),
    as_json: bool = typer.Option(False, "--json", help="machine-readable output"),
    store: str | None = typer.Option(None, "--store", help=STORE_HELP),
) -> None:
    """Set a person's password (asks for it)."""
    from roost.registry import accounts

    rec = accounts.set_password(_store(store), name, _read_password(password_stdin))
    _say(as_json, rec, f"password of {rec.name} changed")


# -- tokens ----------------------------------------------------------------------------------------------------
@tokens_app.command("create")
def tokens_create(
    user: str = typer.Option(..., "--user", help="the account the token acts as"),
    name: str | None = typer.Option(None, "--name", help="what it is for (e.g. ci, laptop)"),
    expires: str | None = typer.Option(None, "--expires", help="lifetime, e.g. 30d, 12h, 2w (default: never)"),
    as_json: bool = typer.Option(False, "--json", help="machine-readable output"),
    store: str | None = typer.Option(None, "--store", help=STORE_HELP),
) -> None:
    """Create an API token and print it once (only a hash is kept: copy it now)."""
    from roost.registry import accounts
    from roost.registry.selection import parse_age

    new = accounts.create_token(_store(store), user, name=name, expires_in=parse_age(expires) if expires else None)
    if as_json:
        from dataclasses import asdict

        from roost.cli.output import print_json

        print_json({"token": new.token, **asdict(new.record)})
        return
    sys.stdout.write(new.token + "\n")
    until = f", expires {_when(new.record.expires_at)} UTC" if new.record.expires_at else ""
    sys.stderr.write(f"token {new.record.id} for {user}{until}; it is shown only now\n")


@tokens_app.command("list")
def tokens_list(
    user: str | None = typer.Option(None, "--user", help="only this account's tokens"),
    limit: int | None = LIMIT,
    order_by: str | None = ORDER_BY,
    as_json: bool = typer.Option(False, "--json", help="machine-readable output"),
    store: str | None = typer.Option(None, "--store", help=STORE_HELP),
) -> None:
    """List tokens (ids and states; secrets are never stored)."""
    from dataclasses import asdict

    from roost.cli.output import print_table, sort_limit
    from roost.registry import accounts

    recs = sort_limit(accounts.list_tokens(_store(store), user), order_by, limit, asdict)
    if as_json:
        _json(recs)
        return
    rows = [
        (r.id, r.account, r.name or "", r.state(), _when(r.created_at), _when(r.expires_at), _when(r.last_used_at))
        for r in recs
    ]
    print_table(None, ["id", "account", "name", "state", "created", "expires", "last used"], rows)


@tokens_app.command("revoke")
def tokens_revoke(
    token_id: str = typer.Argument(..., help="the token's id (see roost tokens list)"),
    as_json: bool = typer.Option(False, "--json", help="machine-readable output"),
    store: str | None = typer.Option(None, "--store", help=STORE_HELP),
) -> None:
    """Revoke a token: refused from the next request on."""
    from roost.registry import accounts

    rec = accounts.revoke_token(_store(store), token_id)
    _say(as_json, rec, f"token {rec.id} of {rec.account} revoked")


# -- groups ----------------------------------------------------------------------------------------------------
@groups_app.command("add")
def groups_add(
    name: str = typer.Argument(..., help="group name"),
    as_json: bool = typer.Option(False, "--json", help="machine-readable output"),
    store: str | None = typer.Option(None, "--store", help=STORE_HELP),
) -> None:
    """Create a group (grant it roles with `roost grant group:NAME ROLE RESOURCE`)."""
    from roost.registry import grants

    rec = grants.create_group(_store(store), name)
    _say(as_json, rec, f"created group {rec.name}")


@groups_app.command("add-member")
def groups_add_member(
    group: str = typer.Argument(..., help="group name"),
    account: str = typer.Argument(..., help="account name"),
    as_json: bool = typer.Option(False, "--json", help="machine-readable output"),
    store: str | None = typer.Option(None, "--store", help=STORE_HELP),
) -> None:
    """Add an account to a group."""
    from roost.registry import grants

    grants.add_member(_store(store), group, account)
    _say(as_json, {"group": group, "account": account, "member": True}, f"{account} is a member of {group}")


@groups_app.command("remove-member")
def groups_remove_member(
    group: str = typer.Argument(..., help="group name"),
    account: str = typer.Argument(..., help="account name"),
    as_json: bool = typer.Option(False, "--json", help="machine-readable output"),
    store: str | None = typer.Option(None, "--store", help=STORE_HELP),
) -> None:
    """Remove an account from a group."""
    from roost.registry import grants

    grants.remove_member(_store(store), group, account)
    _say(as_json, {"group": group, "account": account, "member": False}, f"{account} is no longer a member of {group}")


@groups_app.command("list")
def groups_list(
    limit: int | None = LIMIT,
    order_by: str | None = ORDER_BY,
    as_json: bool = typer.Option(False, "--json", help="machine-readable output"),
    store: str | None = typer.Option(None, "--store", help=STORE_HELP),
) -> None:
    """List groups and their members."""
    from dataclasses import asdict

    from roost.cli.output import print_table, sort_limit
    from roost.registry import grants

    recs = sort_limit(grants.list_groups(_store(store)), order_by, limit, asdict)
    if as_json:
        _json(recs)
        return
    print_table(None, ["group", "members"], [(g.name, ", ".join(g.members)) for g in recs])


# -- grants ----------------------------------------------------------------------------------------------------
def grant_cmd(
    principal: str = typer.Argument(..., help="an account name, or group:NAME"),
    role: str = typer.Argument(..., help="none, read, edit or manage"),
    resource: str = typer.Argument(..., help="experiment:NAME, model:NAME or object:KIND"),
    as_json: bool = typer.Option(False, "--json", help="machine-readable output"),
    store: str | None = typer.Option(None, "--store", help=STORE_HELP),
) -> None:
    """Give an account or group a role on an experiment, registered model or kind of stored object."""
    from roost.registry import grants

    kind, name = grants.parse_resource(resource)
    rec = grants.grant(_store(store), principal, kind, name, role)
    _say(as_json, rec, f"{rec.principal} has {rec.role} on {rec.resource}")


def revoke_cmd(
    principal: str = typer.Argument(..., help="an account name, or group:NAME"),
    resource: str = typer.Argument(..., help="experiment:NAME, model:NAME or object:KIND"),
    as_json: bool = typer.Option(False, "--json", help="machine-readable output"),
    store: str | None = typer.Option(None, "--store", help=STORE_HELP),
) -> None:
    """Take back an account's or group's grant on a resource (it falls back to the server's default role)."""
    from roost.registry import grants

    kind, name = grants.parse_resource(resource)
    grants.revoke(_store(store), principal, kind, name)
    line = f"{principal} has no grant on {kind}:{name} any more"
    _say(as_json, {"principal": principal, "resource": f"{kind}:{name}", "role": None}, line)


def grants_cmd(
    principal: str | None = typer.Option(None, "--principal", help="only this account (or group:NAME)"),
    resource: str | None = typer.Option(None, "--resource", help="only this experiment:NAME / model:NAME"),
    limit: int | None = LIMIT,
    order_by: str | None = ORDER_BY,
    as_json: bool = typer.Option(False, "--json", help="machine-readable output"),
    store: str | None = typer.Option(None, "--store", help=STORE_HELP),
) -> None:
    """List grants."""
    from dataclasses import asdict

    from roost.cli.output import print_table, sort_limit
    from roost.registry import grants

    recs = sort_limit(grants.list_grants(_store(store), principal, resource), order_by, limit, asdict)
    if as_json:
        _json(recs)
        return
    print_table(None, ["principal", "role", "resource"], [(g.principal, g.role, g.resource) for g in recs])


# -- audit -----------------------------------------------------------------------------------------------------
def audit_cmd(
    actor: str | None = typer.Option(None, "--actor", help="only this account ('-': requests without one)"),
    action: str | None = typer.Option(None, "--action", help="only this action (POST, DELETE, login, …)"),
    since: str | None = typer.Option(None, "--since", help="from this long ago (1h, 7d) or this date (ISO 8601) on"),
    refused: bool = typer.Option(False, "--refused", help="only refused requests (status 400 and up)"),
    limit: int = typer.Option(100, "--limit", "-n", help="at most this many events, newest first"),
    as_json: bool = typer.Option(False, "--json", help="machine-readable output"),
    store: str | None = typer.Option(None, "--store", help=STORE_HELP),
) -> None:
    """Show the audit log: every write and refused request on the team server (who, what, when, from where)."""
    from roost.cli.output import print_table
    from roost.registry import audit_log

    recs = audit_log.query(
        _store(store),
        actor=actor,
        action=action,
        since=audit_log.parse_since(since),
        limit=limit,
        status_min=400 if refused else None,
    )
    if as_json:
        _json(recs)
        return
    rows = [(_when(r.at), r.actor or "-", r.action, r.resource or "", r.status, r.client or "") for r in recs]
    print_table(None, ["at (UTC)", "actor", "action", "resource", "status", "client"], rows)
