"""The ASGI application: FastAPI pages and webhook, with the Socket.IO server mounted around it."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import socketio
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.sessions import SessionMiddleware
from starlette.responses import Response

from sev.config import (
    DEMO_CLIENT_ID,
    SIMULATOR_MOUNT,
    Settings,
    SettingsError,
    load_settings,
)
from sev.live import RequireRedis, create_server
from sev.services import open_services
from sev.sessions import SESSION_COOKIE
from sev.store import StoreUnavailable
from sev.twitch import TwitchError
from sev.web import auth, pages, webhook
from sev.web.deps import LoginRequired, StoreDep
from sev.web.security import SecurityHeaders, redact_access_log
from sev.web.templating import STATIC_DIR, render

if TYPE_CHECKING:
    from twitchsim import Simulator

log = logging.getLogger("sev")


def create_app(settings: Settings | None = None) -> socketio.ASGIApp:
    """Build SEV: FastAPI app + Socket.IO server; the lifespan opens the services."""
    settings = settings.resolve() if settings is not None else load_settings()
    logging.basicConfig(
        level=settings.sev_log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # httpx logs every request at INFO: too chatty for a webhook receiver.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    redact_access_log()
    # Built with the app, which wraps or mounts them; the lifespan starts and stops them.
    sio = create_server(settings)
    simulator = _simulator(settings) if settings.demo else None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with open_services(settings, sio, simulator) as services:
            app.state.services = services
            yield

    # No generated API docs: nothing of SEV's is meant for strangers to browse.
    app = FastAPI(title="SEV", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.settings = settings
    app.add_middleware(
        SessionMiddleware,
        secret_key=settings.secret("session"),
        session_cookie=SESSION_COOKIE,
        max_age=settings.sev_session_max_age_s,
        same_site="lax",
        https_only=settings.secure_cookies,
    )
    if settings.redis_url is not None:
        app.add_middleware(RequireRedis, url=settings.redis_url.get_secret_value())
    # The simulated Twitch's pages are its own; the webhook answers Twitch, not browsers.
    app.add_middleware(
        SecurityHeaders,
        auth_url=settings.twitch_auth_url,
        exempt=("/webhooks", *((SIMULATOR_MOUNT,) if simulator is not None else ())),
        hsts=settings.secure_cookies,
    )
    _add_error_handlers(app)
    app.include_router(pages.router)
    app.include_router(auth.router)
    app.include_router(webhook.router)
    _add_health(app, settings)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    if simulator is not None:
        app.mount(SIMULATOR_MOUNT, simulator.app)
    # No on_startup/on_shutdown here, so lifespan events reach FastAPI (docs/PITFALLS.md).
    return socketio.ASGIApp(sio, other_asgi_app=app, socketio_path="socket.io")


def _simulator(settings: Settings) -> Simulator:
    """The simulated Twitch of demo mode, mounted in SEV's app."""
    from twitchsim import SimulatorConfig, create_simulator

    return create_simulator(
        SimulatorConfig(
            # The resolved registration: a public demo's secret is its own (sev/config.py).
            client_id=settings.twitch_client_id or DEMO_CLIENT_ID,
            client_secret=settings.secret("client"),
            events_per_minute=settings.sev_demo_events_per_minute,
            public_url=f"{settings.sev_public_url}{SIMULATOR_MOUNT}",
            # It delivers to SEV's webhook only, and a public demo has no remote control.
            callbacks=(settings.callback_url,),
            public=settings.sev_demo,
            # Its tokens and subscriptions outlive a restart, as Twitch's do: SEV's stored
            # logins and channel grants stay valid.
            data_dir=settings.sev_data_dir,
        )
    )


def _add_health(app: FastAPI, settings: Settings) -> None:
    @app.get("/healthz", include_in_schema=False)
    async def read_health(store: StoreDep) -> Response:
        """Process and store health; 503 when the store is down."""
        try:
            await asyncio.wait_for(store.ping(), timeout=1.8)
            state = await asyncio.wait_for(store.get_eventsub_state(), timeout=1.8)
        except (StoreUnavailable, TimeoutError) as error:
            # The reason stays in the log: it may name the database's host.
            log.warning("health check: store unavailable: %s", str(error)[:200])
            return JSONResponse({"status": "degraded", "store": "unavailable"}, status_code=503)
        # Twitch's subscription figures as of the last reconcile (null before the first).
        eventsub = state.model_dump(
            mode="json", include={"total", "total_cost", "max_total_cost", "checked_at"}
        )
        return JSONResponse(
            {"status": "ok", "store": "ok", "demo": settings.demo, "eventsub": eventsub}
        )


_MACHINE_PATHS = ("/api/", "/webhooks/")


def _problem(request: Request, status: int, error: Any, title: str, message: str) -> Response:
    """JSON for the API and the webhook, SEV's error page for people."""
    if request.url.path.startswith(_MACHINE_PATHS):
        return JSONResponse({"error": error}, status_code=status)
    return render(request, "error.html", {"title": title, "message": message}, status_code=status)


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(LoginRequired)
    async def login_required(request: Request, _: Exception) -> Response:
        if request.url.path.startswith("/api/"):
            return JSONResponse({"error": "log in first"}, status_code=401)
        return RedirectResponse("/", status_code=303)

    @app.exception_handler(StoreUnavailable)
    async def store_unavailable(request: Request, _: Exception) -> Response:
        return _problem(
            request,
            503,
            "store unavailable",
            "SEV's database is unavailable",
            "Nothing is lost; try again in a moment.",
        )

    @app.exception_handler(TwitchError)
    async def twitch_failed(request: Request, _: Exception) -> Response:
        return render(
            request,
            "error.html",
            {"title": "Twitch is not answering", "message": "Try again in a minute."},
            status_code=503,
        )

    # Starlette's HTTPException (FastAPI's is a subclass): unknown routes and wrong methods too.
    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> Response:
        if error.status_code == 404 and not request.url.path.startswith(_MACHINE_PATHS):
            return render(
                request,
                "not_found.html",
                {"message": "There is no page at this address."},
                status_code=404,
            )
        return _problem(
            request,
            error.status_code,
            error.detail,
            f"Error {error.status_code}",
            str(error.detail),
        )

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, _: RequestValidationError) -> Response:
        return _problem(
            request,
            422,
            "invalid request",
            "That request was not valid",
            "Something in the form or the address was too long or malformed. "
            "Go back and try again.",
        )


def _build_default() -> Any:
    try:
        return create_app()
    except SettingsError as error:
        # One clear line naming the variable, not a traceback.
        sys.exit(f"SEV cannot start: {error}")


def __getattr__(name: str) -> Any:
    # `uvicorn sev.app:app` builds the app on first access, so importing this module (tests,
    # tools) does not read the environment or create files.
    if name == "app":
        application = _build_default()
        globals()["app"] = application
        return application
    raise AttributeError(name)
