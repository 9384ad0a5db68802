"""`/helix`: users and EventSub subscriptions, with Twitch's auth rules and rate-limit headers."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .images import PROFILE_IMAGES
from .subscriptions import FILTERS, HelixError
from .tokens import AccessToken

if TYPE_CHECKING:
    from .core import Simulator

MAX_USERS = 100
Handler = Callable[[Request, AccessToken], Awaitable[Response]]


def error_response(status: int, message: str) -> JSONResponse:
    """Helix's error body: `{"error", "status", "message"}`."""
    return JSONResponse(
        {"error": HTTPStatus(status).phrase, "status": status, "message": message},
        status_code=status,
    )


class HelixRoutes:
    """The handlers, bound to one simulator's state."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim

    def routes(self) -> list[Route]:
        """Routes relative to the `/helix` mount."""
        subscriptions = {
            "GET": self.list_subscriptions,
            "POST": self.create_subscription,
            "DELETE": self.delete_subscription,
        }

        async def eventsub(request: Request, token: AccessToken) -> Response:
            return await subscriptions[request.method](request, token)

        return [
            Route("/users", self._endpoint(self.read_users), methods=["GET"]),
            Route("/eventsub/subscriptions", self._endpoint(eventsub), methods=[*subscriptions]),
        ]

    def _endpoint(self, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            try:
                token = self._authenticate(request)
            except HelixError as refused:
                # Before any bucket: a stranger's bad requests naming SEV's Client-Id must not
                # spend SEV's points (ratelimit.py).
                response: Response = error_response(refused.status, refused.message)
            else:
                bucket = self.sim.bucket(token)
                if not bucket.take():
                    response = error_response(429, "Too Many Requests")
                else:
                    try:
                        response = await handler(request, token)
                    except HelixError as refused:
                        response = error_response(refused.status, refused.message)
                response.headers.update(bucket.headers())
            self.sim.helix_request_count += 1
            self.sim.helix_requests.append(
                {
                    "method": request.method,
                    "path": request.url.path,
                    "query": request.url.query,
                    "status": response.status_code,
                }
            )
            return response

        return endpoint

    def _authenticate(self, request: Request) -> AccessToken:
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise HelixError(401, "OAuth token is missing")
        client_id = request.headers.get("client-id", "")
        if not client_id:
            raise HelixError(401, "Client-Id header required")
        token = self.sim.tokens.lookup(value.strip())
        if token is None or (token.user_id and self.sim.directory.by_id(token.user_id) is None):
            raise HelixError(401, "Invalid OAuth token")
        if token.client_id != client_id:
            raise HelixError(401, "Client ID and OAuth token do not match")
        return token

    async def read_users(self, request: Request, token: AccessToken) -> Response:
        """Users by `id` and/or `login` (at most 100 together); unknown ones are left out."""
        ids = request.query_params.getlist("id")
        logins = request.query_params.getlist("login")
        if len(ids) + len(logins) > MAX_USERS:
            raise HelixError(400, f"at most {MAX_USERS} id and login values together")
        directory = self.sim.directory
        if not ids and not logins:
            if token.user_id is None:
                raise HelixError(400, "Must provide an ID, Login or OAuth Token")
            ids = [token.user_id]
        found = [directory.by_id(i) for i in ids] + [directory.by_login(name) for name in logins]
        unique = {a.id: a for a in found if a is not None}
        # With a public URL the pictures are addresses, as on Twitch's image CDN (images.py).
        public_url = self.sim.config.public_url
        images = f"{public_url}{PROFILE_IMAGES}" if public_url else ""
        data = [
            account.helix(
                email=account.id == token.user_id and "user:read:email" in token.scopes,
                images=images,
            )
            for account in unique.values()
        ]
        return JSONResponse({"data": data})

    def _totals(self, client_id: str) -> dict[str, int]:
        subscriptions = self.sim.subscriptions
        return {
            "total": subscriptions.count(client_id),
            "total_cost": subscriptions.total_cost(client_id),
            "max_total_cost": subscriptions.max_total_cost,
        }

    async def create_subscription(self, request: Request, token: AccessToken) -> Response:
        """Create a webhook subscription (app token) and queue its challenge, or a WebSocket
        one (user token), enabled at once."""
        try:
            body: Any = json.loads(await request.body())
        except ValueError as exc:
            raise HelixError(400, "request body must be JSON") from exc
        transport = body.get("transport") if isinstance(body, dict) else None
        method = transport.get("method") if isinstance(transport, dict) else None
        if method == "websocket":
            sockets = self.sim.sockets
            sub = self.sim.subscriptions.create_websocket(token, body, sockets.connected_at)
            sockets.subscribed(sub.session_id, sub.token_user_id)
            totals = self.sim.subscriptions.websocket_totals(token.client_id, sub.token_user_id)
            return JSONResponse({"data": [sub.public()], **totals}, status_code=202)
        if token.user_id is not None and method == "webhook":
            raise HelixError(401, "an app access token is required for webhook subscriptions")
        sub = self.sim.subscriptions.create(token.client_id, body)
        self.sim.queue_verification(sub)
        return JSONResponse(
            {"data": [sub.public()], **self._totals(token.client_id)}, status_code=202
        )

    async def list_subscriptions(self, request: Request, token: AccessToken) -> Response:
        """The client's subscriptions, at most one filter, paginated with `after` and `first`."""
        query = request.query_params
        filters = {name: query[name] for name in FILTERS if name in query}
        if len(filters) > 1:
            raise HelixError(400, "only one of status, type, user_id, subscription_id allowed")
        try:
            first = int(query.get("first", "100"))
        except ValueError as exc:
            raise HelixError(400, "first must be a number from 1 to 100") from exc
        if not 1 <= first <= 100:
            raise HelixError(400, "first must be a number from 1 to 100")
        subscriptions = self.sim.subscriptions
        # A user token sees that user's WebSocket subscriptions, an app token its webhook ones.
        page, cursor = subscriptions.page(
            token.client_id, filters, query.get("after"), first, user_id=token.user_id
        )
        totals = (
            self._totals(token.client_id)
            if token.user_id is None
            else subscriptions.websocket_totals(token.client_id, token.user_id)
        )
        body: dict[str, Any] = {"data": [s.public() for s in page], **totals}
        body["pagination"] = {"cursor": cursor} if cursor else {}
        return JSONResponse(body)

    async def delete_subscription(self, request: Request, token: AccessToken) -> Response:
        """Delete one of the client's subscriptions by `id` (with a user token, one of that
        user's WebSocket ones): 204, or 404 when unknown."""
        subscription_id = request.query_params.get("id")
        if not subscription_id:
            raise HelixError(400, 'Missing required parameter "id"')
        deleted = self.sim.subscriptions.delete(
            token.client_id, subscription_id, user_id=token.user_id
        )
        if deleted is None:
            raise HelixError(404, "subscription not found")
        return Response(status_code=204)
