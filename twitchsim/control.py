"""`/control`: the demo's and the tests' remote (trigger events, faults, inspect state)."""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .websocket import CLOSE_REASONS, Session

if TYPE_CHECKING:
    from .core import Simulator

MAX_TRIGGER_COUNT = 100
# The budgets /control/limits sets: the app's webhook budget and the WebSocket limits.
LIMITS = ("max_total_cost", "ws_max_total_cost", "ws_max_per_connection", "ws_max_connections")
Handler = Callable[[Request], Awaitable[Response]]


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _host_name(header: str) -> str:
    """The name of a Host header (`name`, `name:port`, `[::1]:port`), lower case; "" if odd."""
    try:
        return (urlsplit(f"//{header}").hostname or "").lower()
    except ValueError:
        return ""


def _is_local_name(name: str) -> bool:
    return name == "localhost" or name.endswith(".localhost") or _is_loopback(name)


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"status": status, "message": message}, status_code=status)


async def _json_object(request: Request) -> dict[str, Any] | None:
    try:
        body = json.loads(await request.body())
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


class ControlRoutes:
    """The handlers, bound to one simulator's state."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim

    def routes(self) -> list[Route]:
        """Routes relative to the `/control` mount, each behind `_guarded`."""
        table: list[tuple[str, Handler, list[str]]] = [
            ("/trigger", self.trigger, ["POST"]),
            ("/accounts", self.read_accounts, ["GET"]),
            ("/faults", self.faults, ["GET", "POST"]),
            ("/subscriptions", self.read_subscriptions, ["GET"]),
            ("/deliveries", self.read_deliveries, ["GET"]),
            ("/requests", self.read_requests, ["GET"]),
            ("/revoke", self.revoke, ["POST"]),
            ("/remove-user", self.remove_user, ["POST"]),
            ("/disconnect", self.disconnect, ["POST"]),
            ("/limits", self.limits, ["GET", "POST"]),
            ("/websocket", self.read_websocket, ["GET"]),
            ("/websocket/reconnect", self.reconnect_websocket, ["POST"]),
            ("/websocket/close", self.close_websocket, ["POST"]),
            ("/websocket/silence", self.silence_websocket, ["POST"]),
        ]
        return [
            Route(path, self._guarded(handler), methods=methods) for path, handler, methods in table
        ]

    def _guarded(self, handler: Handler) -> Handler:
        """Control answers this machine only (never a public demo), and JSON posts only."""

        async def guarded(request: Request) -> Response:
            client = request.client.host if request.client else ""
            # A proxy in front means the request came from elsewhere, whatever the peer is.
            proxied = any(h in request.headers for h in ("x-forwarded-for", "forwarded"))
            if self.sim.config.public or proxied or not _is_loopback(client):
                return _error(403, "the simulated Twitch's control answers this machine only")
            # DNS rebinding: a page on a stranger's name that resolves to 127.0.0.1 reaches this
            # machine from the viewer's browser, under the stranger's name.
            if not self._known_host(request.headers.get("host", "")):
                return _error(403, "the simulated Twitch's control answers its own names only")
            content_type = request.headers.get("content-type", "").split(";")[0].strip()
            if request.method == "POST" and content_type != "application/json":
                # A web page can post text/plain to localhost without asking: JSON it cannot.
                return _error(415, "control takes application/json")
            return await handler(request)

        return guarded

    def _known_host(self, header: str) -> bool:
        """A loopback name, or the host of the simulator's own public URL."""
        name = _host_name(header)
        own = urlsplit(self.sim.config.public_url).hostname if self.sim.config.public_url else None
        return bool(name) and (_is_local_name(name) or name == (own or "").lower())

    async def trigger(self, request: Request) -> Response:
        """`{"type", "broadcaster", "count", "overrides"?}` → `{"sent": [message ids]}`; when
        nothing was sent, also why (`reason` and its details: triggers.why_nothing_sent)."""
        body = await _json_object(request)
        if body is None:
            return _error(400, "body must be a JSON object")
        type_, login = body.get("type"), body.get("broadcaster")
        count, overrides = body.get("count", 1), body.get("overrides", {})
        if not isinstance(type_, str) or not isinstance(login, str):
            return _error(400, "type and broadcaster are required strings")
        if isinstance(count, bool) or not isinstance(count, int):
            return _error(400, "count must be a whole number")
        if not 1 <= count <= MAX_TRIGGER_COUNT:
            return _error(400, f"count must be from 1 to {MAX_TRIGGER_COUNT}")
        if not isinstance(overrides, dict):
            return _error(400, "overrides must be an object")
        try:
            sent = await self.sim.trigger(type_, login, count, **overrides)
        except LookupError as exc:
            return _error(404, str(exc))
        except ValueError as exc:
            return _error(400, str(exc))
        if not sent:
            return JSONResponse({"sent": sent, **self.sim.why_nothing_sent(type_, login)})
        return JSONResponse({"sent": sent})

    async def read_accounts(self, request: Request) -> Response:
        """The demo directory."""
        data = [
            {"id": a.id, "login": a.login, "display_name": a.display_name, "streamer": a.streamer}
            for a in self.sim.directory
        ]
        return JSONResponse({"data": data})

    async def faults(self, request: Request) -> Response:
        """Read (GET) or set (POST, a JSON object of switches) the delivery faults."""
        if request.method == "POST":
            body = await _json_object(request)
            if body is None:
                return _error(400, "body must be a JSON object")
            try:
                self.sim.faults.update(body)
            except ValueError as exc:
                return _error(400, str(exc))
        return JSONResponse({"faults": self.sim.faults.as_dict()})

    async def read_subscriptions(self, request: Request) -> Response:
        """Every client's subscriptions (no secrets)."""
        data = [{**s.public(), "client_id": s.client_id} for s in self.sim.subscriptions.values()]
        return JSONResponse({"data": data, "total": len(data)})

    async def read_deliveries(self, request: Request) -> Response:
        """The latest delivery attempts, newest last."""
        return JSONResponse({"data": [asdict(a) for a in self.sim.deliveries.attempts]})

    async def read_requests(self, request: Request) -> Response:
        """The latest Helix requests, oldest first, and how many were made in all."""
        sim = self.sim
        return JSONResponse({"data": list(sim.helix_requests), "total": sim.helix_request_count})

    async def revoke(self, request: Request) -> Response:
        """`{"status", "subscription_id"? , "type"?, "login"?}`: Twitch revokes the matching
        active subscriptions with that documented status (version_removed also retires the
        type and version: creating it again answers 410)."""
        body = await _json_object(request)
        if body is None:
            return _error(400, "body must be a JSON object")
        status = body.get("status")
        filters = {k: body.get(k) for k in ("subscription_id", "type", "login")}
        if not all(v is None or isinstance(v, str) for v in filters.values()):
            return _error(400, "subscription_id, type and login must be strings")
        user_id = None
        if filters["login"] is not None:
            account = self.sim.directory.by_login(str(filters["login"]))
            if account is None:
                return _error(404, f"unknown account {filters['login']!r}")
            user_id = account.id
        subs = self.sim.subscriptions.matching(
            subscription_id=filters["subscription_id"], type=filters["type"], user_id=user_id
        )
        try:
            revoked = self.sim.revoke(subs, str(status))
        except ValueError as exc:
            return _error(400, str(exc))
        return JSONResponse({"revoked": revoked})

    async def remove_user(self, request: Request) -> Response:
        """`{"login"}`: the account is deleted or suspended (its subscriptions: user_removed)."""
        return await self._for_account(request, "revoked", self.sim.remove_user)

    async def disconnect(self, request: Request) -> Response:
        """`{"login"}`: the user disconnects the demo app on Twitch's Connections page."""
        return await self._for_account(request, "sent", self.sim.disconnect)

    async def _for_account(
        self, request: Request, answer: str, action: Callable[[str], list[str]]
    ) -> Response:
        body = await _json_object(request)
        login = body.get("login") if body else None
        if not isinstance(login, str):
            return _error(400, "login is a required string")
        try:
            return JSONResponse({answer: action(login)})
        except LookupError as exc:
            return _error(404, str(exc))

    async def limits(self, request: Request) -> Response:
        """Read (GET) or set (POST, some of `{"max_total_cost", "ws_max_total_cost",
        "ws_max_per_connection", "ws_max_connections"}`) the subscription limits."""
        subscriptions = self.sim.subscriptions
        if request.method == "POST":
            body = await _json_object(request)
            if not body or set(body) - set(LIMITS):
                return _error(400, f"give some of {', '.join(LIMITS)}")
            for name, value in body.items():
                if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                    return _error(400, f"{name} must be a whole number >= 0")
            for name, value in body.items():
                setattr(subscriptions, name, value)
        return JSONResponse({name: getattr(subscriptions, name) for name in LIMITS})

    async def read_websocket(self, request: Request) -> Response:
        """The open EventSub WebSocket sessions."""
        sockets = self.sim.sockets
        data = [
            {
                "id": session.id,
                "status": session.status,
                "connected_at": session.connected_at,
                "keepalive_timeout_seconds": session.keepalive_s,
                "user_ids": sorted(session.user_ids),
                "subscriptions": [sub.id for sub in sockets.carried(session)],
                "url": session.url,
            }
            for session in sockets.sessions()
        ]
        return JSONResponse({"data": data})

    async def _sessions(
        self, request: Request
    ) -> tuple[dict[str, Any], list[Session]] | JSONResponse:
        """The body and the sessions it names: `session_id`, or every open one."""
        body = await _json_object(request)
        if body is None:
            return _error(400, "body must be a JSON object")
        session_id = body.get("session_id")
        if session_id is None:
            return body, self.sim.sockets.sessions()
        session = self.sim.sockets.get(session_id) if isinstance(session_id, str) else None
        if session is None:
            return _error(404, f"no open websocket session {session_id!r}")
        return body, [session]

    async def reconnect_websocket(self, request: Request) -> Response:
        """`{"session_id"?}`: send session_reconnect → `{"data": [{"session_id",
        "reconnect_url"}]}`."""
        named = await self._sessions(request)
        if isinstance(named, JSONResponse):
            return named
        _, sessions = named
        data = [
            {"session_id": session.id, "reconnect_url": self.sim.sockets.reconnect(session)}
            for session in sessions
        ]
        return JSONResponse({"data": data})

    async def close_websocket(self, request: Request) -> Response:
        """`{"session_id"?, "code"}`: close with one of Twitch's codes and its reason."""
        named = await self._sessions(request)
        if isinstance(named, JSONResponse):
            return named
        body, sessions = named
        code = body.get("code")
        if isinstance(code, bool) or code not in CLOSE_REASONS:
            codes = ", ".join(str(c) for c in CLOSE_REASONS)
            return _error(400, f"code must be one of {codes}")
        for session in sessions:
            self.sim.sockets.close(session, code)
        return JSONResponse({"closed": [session.id for session in sessions]})

    async def silence_websocket(self, request: Request) -> Response:
        """`{"session_id"?, "seconds"}`: the connection sends nothing for that long."""
        named = await self._sessions(request)
        if isinstance(named, JSONResponse):
            return named
        body, sessions = named
        seconds = body.get("seconds")
        if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds < 0:
            return _error(400, "seconds must be a number >= 0")
        for session in sessions:
            self.sim.sockets.silence(session, float(seconds))
        return JSONResponse({"silenced": [session.id for session in sessions]})
