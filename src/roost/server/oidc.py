"""OIDC sign-in for the UI (optional): /login/oidc sends the browser to the provider (authorization code flow with
PKCE, state and nonce), /login/oidc/callback exchanges the code (authlib), checks the ID token (signature from the
provider's JWKS, issuer, audience, expiry, nonce) and signs the person in with the same session cookie as /login.

Configured by ServerSettings.oidc_issuer / oidc_client_id / oidc_client_secret; the provider's redirect URI is
`PUBLIC_URL/login/oidc/callback`.
"""

from __future__ import annotations

import hmac
import logging
import secrets
import time
from typing import Any
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from roost.errors import RoostError
from roost.server import login
from roost.server.audit import AUDIT_KEY
from roost.server.settings import ServerSettings

log = logging.getLogger(__name__)

START, CALLBACK = "/login/oidc", "/login/oidc/callback"
FLOW_COOKIE = "roost_oidc"
FLOW_MAX_AGE = 600  # seconds a person has at the provider
CACHE_S = 3600  # discovery document and keys are fetched again after an hour (or at once for an unknown key)
_cache: dict[str, tuple[float, Any]] = {}


class OidcRefused(RoostError):
    """The provider's answer is not a valid sign-in (HTTP 401)."""

    status = 401


class ProviderDown(RoostError):
    """The OIDC provider did not answer (HTTP 502)."""

    status = 502


async def _get_json(url: str) -> Any:
    import httpx

    try:
        async with httpx.AsyncClient(timeout=10) as c:
            r = await c.get(url)
            r.raise_for_status()
            return r.json()
    except (httpx.HTTPError, ValueError) as exc:
        raise ProviderDown(f"the OIDC provider did not answer {url}: {exc}", hint="try again later") from None


async def _cached(url: str, fresh: bool = False) -> Any:
    hit = _cache.get(url)
    if hit is not None and not fresh and hit[0] > time.monotonic():
        return hit[1]
    doc = await _get_json(url)
    _cache[url] = (time.monotonic() + CACHE_S, doc)
    return doc


async def metadata(issuer: str) -> dict[str, Any]:
    """The provider's discovery document (issuer/.well-known/openid-configuration)."""
    doc = await _cached(issuer.rstrip("/") + "/.well-known/openid-configuration")
    if not isinstance(doc, dict) or doc.get("issuer") != issuer:
        raise OidcRefused(f"the OIDC provider at {issuer} names another issuer", hint="check --oidc-issuer")
    return doc


def redirect_uri(settings: ServerSettings, request: Request) -> str:
    """Where the provider sends the browser back (the public URL when one is set)."""
    base = (settings.public_url or str(request.base_url)).rstrip("/")
    return base + CALLBACK


def _flow(settings: ServerSettings) -> Any:
    from itsdangerous import URLSafeTimedSerializer

    return URLSafeTimedSerializer(login.session_secret(settings), salt="roost-oidc")


def _jose_errors(authlib_error: type[Exception]) -> tuple[type[Exception], ...]:
    """The JOSE error classes the installed authlib raises: its own, and joserfc's where authlib uses joserfc."""
    try:
        from joserfc.errors import JoseError as RfcJoseError
    except ImportError:
        return (authlib_error,)
    return (authlib_error, RfcJoseError)


async def check_id_token(settings: ServerSettings, id_token: str, nonce: str, access_token: str | None) -> Any:
    """The ID token's claims once its signature, issuer, audience, times and nonce are right, else OidcRefused."""
    from authlib.jose import JsonWebKey, jwt
    from authlib.jose.errors import JoseError
    from authlib.oidc.core import CodeIDToken

    assert settings.oidc_issuer and settings.oidc_client_id
    meta = await metadata(settings.oidc_issuer)
    options = {"iss": {"essential": True, "value": settings.oidc_issuer}}
    params = {"nonce": nonce, "client_id": settings.oidc_client_id, "access_token": access_token}
    for fresh in (False, True):  # a key the cached set lacks: the provider rotated keys, fetch them once more
        keys = JsonWebKey.import_key_set(await _cached(meta["jwks_uri"], fresh=fresh))
        try:
            claims = jwt.decode(id_token, keys, claims_cls=CodeIDToken, claims_options=options, claims_params=params)
            claims.validate(leeway=60)
            return claims
        except ValueError as exc:  # no key with that kid
            if fresh:
                raise OidcRefused(f"ID token refused: {exc}", hint="sign in again") from None
        except _jose_errors(JoseError) as exc:  # authlib < 1.7 raises its own; later ones joserfc's
            what = f"{getattr(exc, 'error', type(exc).__name__)}: {getattr(exc, 'description', None) or ''}"
            raise OidcRefused(f"ID token refused: {what}".strip(), hint="sign in again") from None
    raise AssertionError("unreachable")


def routes(settings: ServerSettings) -> list[BaseRoute]:
    """GET /login/oidc and GET /login/oidc/callback (none when no provider is configured)."""
    if not (settings.oidc_issuer and settings.oidc_client_id):
        return []

    async def start(request: Request) -> Response:
        from authlib.oauth2.rfc7636 import create_s256_code_challenge

        assert settings.oidc_issuer
        meta = await metadata(settings.oidc_issuer)
        state, nonce, verifier = secrets.token_urlsafe(24), secrets.token_urlsafe(24), secrets.token_urlsafe(48)
        nxt = login.safe_next(request.query_params.get("next"))
        query = {
            "response_type": "code",
            "client_id": settings.oidc_client_id,
            "redirect_uri": redirect_uri(settings, request),
            "scope": "openid profile email",
            "state": state,
            "nonce": nonce,
            "code_challenge": create_s256_code_challenge(verifier),
            "code_challenge_method": "S256",
        }
        resp = RedirectResponse(meta["authorization_endpoint"] + "?" + urlencode(query), status_code=303)
        flow = _flow(settings).dumps({"s": state, "n": nonce, "v": verifier, "next": nxt})
        resp.headers.append("set-cookie", login.cookie_header(settings, FLOW_COOKIE, flow, FLOW_MAX_AGE))
        return resp

    async def callback(request: Request) -> Response:
        from itsdangerous import BadData

        audit = request.scope.setdefault(AUDIT_KEY, {})
        audit.update(action="login.oidc", always=True)
        q = request.query_params
        try:
            flow = _flow(settings).loads(login.cookies(request.scope).get(FLOW_COOKIE, ""), max_age=FLOW_MAX_AGE)
        except BadData:
            raise OidcRefused(
                "no sign-in in progress (or it took over 10 minutes)", hint="start again at /login"
            ) from None
        if q.get("error"):
            raise OidcRefused(f"the provider refused: {q.get('error', '')[:100]}", hint="start again at /login")
        if not hmac.compare_digest(str(flow.get("s", "")).encode(), q.get("state", "").encode()):
            raise OidcRefused("the sign-in's state does not match this browser's", hint="start again at /login")
        claims = await _exchange(request, q.get("code", ""), flow)
        from roost.registry.sso import account_name_for, sso_account

        assert settings.oidc_issuer
        name = account_name_for(dict(claims))
        audit["detail"] = {"account": name}
        acct = await run_in_threadpool(sso_account, settings.store(), settings.oidc_issuer, str(claims["sub"]), name)
        if acct.disabled:
            raise OidcRefused(f"the account {acct.name!r} is disabled", hint="ask an admin: roost users enable")
        audit["actor"] = acct.name
        resp = RedirectResponse(login.safe_next(flow.get("next")), status_code=303)
        session = login.make_session(settings, acct.id)
        resp.headers.append(
            "set-cookie", login.cookie_header(settings, login.SESSION_COOKIE, session, login.SESSION_MAX_AGE)
        )
        resp.headers.append("set-cookie", login.cookie_header(settings, FLOW_COOKIE, "", 0))
        return resp

    async def _exchange(request: Request, code: str, flow: dict[str, Any]) -> Any:
        import httpx
        from authlib.integrations.httpx_client import AsyncOAuth2Client
        from authlib.oauth2 import OAuth2Error

        assert settings.oidc_issuer
        meta = await metadata(settings.oidc_issuer)
        client = AsyncOAuth2Client(
            settings.oidc_client_id, settings.oidc_client_secret, code_challenge_method="S256", timeout=10
        )
        try:
            async with client:
                token = await client.fetch_token(
                    meta["token_endpoint"],
                    code=code,
                    redirect_uri=redirect_uri(settings, request),
                    code_verifier=flow["v"],
                )
        except OAuth2Error as exc:
            raise OidcRefused(f"the provider refused the code: {exc.error}", hint="start again at /login") from None
        except httpx.HTTPError as exc:
            raise ProviderDown(f"the OIDC provider's token endpoint failed: {exc}", hint="try again later") from None
        if "id_token" not in token:
            raise OidcRefused("the provider sent no ID token", hint="the client needs the openid scope")
        return await check_id_token(settings, token["id_token"], flow["n"], token.get("access_token"))

    return [Route(START, start, methods=["GET"]), Route(CALLBACK, callback, methods=["GET"])]
