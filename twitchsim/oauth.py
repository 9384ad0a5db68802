"""`/oauth2`: authorize (consent page), token, validate and revoke, as id.twitch.tv answers them."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from .catalog import KNOWN_SCOPES
from .pages import CSP, authorize_page, error_page
from .tokens import AccessToken, OAuthFailure, RefreshToken

if TYPE_CHECKING:
    from .core import Simulator

_AUTHORIZE_FIELDS = ("client_id", "redirect_uri", "response_type", "scope", "state", "force_verify")
# The account this browser last authorized as: Twitch's consent page shows the account its
# session is logged in to, so the simulated one checks this account first. Path-scoped to the
# simulator's /oauth2, so an app it is mounted in (SEV) never receives it.
LAST_LOGIN_COOKIE = "twitchsim_last_login"
_LAST_LOGIN_MAX_AGE_S = 30 * 24 * 3600


def _failure(status: int, message: str, error: str | None = None) -> JSONResponse:
    body: dict[str, Any] = {"status": status, "message": message}
    if error:
        body = {"error": error, **body}
    return JSONResponse(body, status_code=status)


def _html(content: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(content, status, headers={"Content-Security-Policy": CSP})


def _with_query(uri: str, params: dict[str, str]) -> str:
    parts = urlsplit(uri)
    query = [*parse_qsl(parts.query, keep_blank_values=True), *params.items()]
    return urlunsplit(parts._replace(query=urlencode(query)))


def _user_token_body(access: AccessToken, refresh: RefreshToken, lifetime_s: int) -> JSONResponse:
    return JSONResponse(
        {
            "access_token": access.token,
            "expires_in": lifetime_s,
            "refresh_token": refresh.token,
            "scope": list(access.scopes),
            "token_type": "bearer",
        }
    )


class OAuthRoutes:
    """The handlers, bound to one simulator's state."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim

    def routes(self) -> list[Route]:
        """Routes relative to the `/oauth2` mount."""
        return [
            Route("/authorize", self.authorize, methods=["GET", "POST"]),
            Route("/token", self.token, methods=["POST"]),
            Route("/validate", self.validate, methods=["GET"]),
            Route("/revoke", self.revoke, methods=["POST"]),
        ]

    def _redirect_allowed(self, uri: str) -> bool:
        # Any loopback redirect is registered for the demo app, plus the public URL's host.
        try:
            parts = urlsplit(uri)
            host = parts.hostname or ""
        except ValueError:
            return False
        if parts.scheme not in ("http", "https") or not host or parts.fragment:
            return False
        public_host = urlsplit(self.sim.config.public_url).hostname
        if host == "localhost" or host.endswith(".localhost") or host == public_host:
            return True
        try:
            return ipaddress.ip_address(host).is_loopback
        except ValueError:
            return False

    async def authorize(self, request: Request) -> Response:
        """Consent page on GET; a decision (form, or `login` + `decision` query) redirects."""
        params: Mapping[str, Any] = (
            await request.form() if request.method == "POST" else request.query_params
        )
        value = {k: str(params.get(k, "")) for k in (*_AUTHORIZE_FIELDS, "login", "decision")}
        if value["client_id"] != self.sim.config.client_id:
            return _html(error_page("Invalid client", "This client id is not registered."), 400)
        redirect_uri = value["redirect_uri"]
        if not self._redirect_allowed(redirect_uri):
            message = "The redirect_uri is not registered for this client (use a loopback URL)."
            return _html(error_page("redirect_mismatch", message), 400)

        def back(**answer: str) -> RedirectResponse:
            return RedirectResponse(_with_query(redirect_uri, answer), status_code=302)

        state = value["state"]
        if value["response_type"] != "code":
            return back(
                error="unsupported_response_type",
                error_description="response_type must be code",
                state=state,
            )
        scopes = value["scope"].split()
        unknown = [s for s in scopes if s not in KNOWN_SCOPES]
        if unknown:
            return back(
                error="invalid_scope", error_description=f"unknown scope {unknown[0]}", state=state
            )
        decision = value["decision"]
        if decision == "cancel":
            return back(
                error="access_denied",
                error_description="The user denied you access",
                state=state,
            )
        if decision == "authorize":
            account = self.sim.directory.by_login(value["login"])
            if account is None:
                return _html(error_page("Unknown account", "Pick one of the demo accounts."), 400)
            code = self.sim.tokens.issue_code(
                value["client_id"], redirect_uri, account.id, tuple(dict.fromkeys(scopes))
            )
            answer = back(code=code, scope=" ".join(scopes), state=state)
            answer.set_cookie(
                LAST_LOGIN_COOKIE,
                account.login,
                max_age=_LAST_LOGIN_MAX_AGE_S,
                path=request.url.path.rsplit("/", 1)[0] or "/",
                secure=request.url.scheme == "https",
                httponly=True,
                samesite="lax",
            )
            return answer
        if request.method == "POST":
            return _html(error_page("Bad request", "decision must be authorize or cancel"), 400)
        hidden = {k: value[k] for k in _AUTHORIZE_FIELDS if k in params}
        last = self.sim.directory.by_login(request.cookies.get(LAST_LOGIN_COOKIE, ""))
        return _html(
            authorize_page(
                client_id=value["client_id"],
                scopes=scopes,
                accounts=self.sim.directory,
                hidden=hidden,
                last_login=last.login if last is not None else None,
            )
        )

    async def token(self, request: Request) -> Response:
        """Authorization code, refresh token and client credentials grants."""
        form = await request.form()
        field = {k: str(v) for k, v in form.items()}
        client_id = field.get("client_id", "")
        if not client_id:
            return _failure(400, "missing client id")
        if client_id != self.sim.config.client_id:
            return _failure(400, "invalid client")
        if field.get("client_secret") != self.sim.config.client_secret:
            return _failure(403, "invalid client secret")
        tokens, lifetime = self.sim.tokens, self.sim.config.token_lifetime_s
        grant_type = field.get("grant_type", "")
        try:
            if grant_type == "authorization_code":
                access, refresh = tokens.redeem_code(
                    field.get("code", ""), client_id, field.get("redirect_uri", "")
                )
                return _user_token_body(access, refresh, lifetime)
            if grant_type == "refresh_token":
                access, refresh = tokens.use_refresh_token(
                    field.get("refresh_token", ""), client_id
                )
                return _user_token_body(access, refresh, lifetime)
        except OAuthFailure as failure:
            return _failure(failure.status, failure.message, failure.error)
        if grant_type == "client_credentials":
            app = tokens.issue_app_token(client_id)
            return JSONResponse(
                {"access_token": app.token, "expires_in": lifetime, "token_type": "bearer"}
            )
        return _failure(400, "unsupported grant type")

    async def validate(self, request: Request) -> Response:
        """`Authorization: OAuth <token>` → who and what the token is for, or 401."""
        # Twitch documents `OAuth <token>`; `Bearer <token>` is accepted too.
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        if scheme not in ("OAuth", "Bearer") or not value.strip():
            return _failure(401, "missing authorization token")
        found = self.sim.tokens.lookup(value.strip())
        if found is None or (found.user_id and self.sim.directory.by_id(found.user_id) is None):
            return _failure(401, "invalid access token")
        body: dict[str, Any] = {"client_id": found.client_id}
        account = self.sim.directory.by_id(found.user_id) if found.user_id else None
        if account is not None:
            body |= {"login": account.login, "user_id": account.id}
        body |= {"scopes": list(found.scopes), "expires_in": self.sim.tokens.expires_in(found)}
        return JSONResponse(body)

    async def revoke(self, request: Request) -> Response:
        """Revoke a token (form `client_id`, `token`); a user token revokes its whole grant."""
        form = await request.form()
        client_id, token = str(form.get("client_id", "")), str(form.get("token", ""))
        if not client_id:
            return _failure(400, "missing client id")
        if client_id != self.sim.config.client_id:
            return _failure(404, "client does not exist")
        owner = self.sim.tokens.owner(token)
        if not self.sim.tokens.revoke(token, client_id):
            return _failure(400, "Invalid token")
        if owner is not None and self.sim.faults.revoke_ends_authorization:
            self.sim.tokens.revoke_authorization(client_id, owner)
        return Response(status_code=200)
