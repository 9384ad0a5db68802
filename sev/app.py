"""The ASGI application: FastAPI pages and webhook, with the Socket.IO server mounted around it."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
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
from sev.eventsub.ingest import Ingestor
from sev.eventsub.receiver import Receiver
from sev.eventsub.subscriptions import Subscriptions
from sev.eventsub.websocket import SocketTransport
from sev.gc_tuning import restore_gc, tune_gc
from sev.jobs import Duties
from sev.live import Live, RedisFanout, RequireRedis, room_of
from sev.profiles import DEMO_IMAGES, Profiles
from sev.ratelimit import RateLimiter
from sev.retention import PRUNE_INTERVAL_S, Retention
from sev.sessions import SESSION_COOKIE
from sev.store import StoreUnavailable, create_store
from sev.store.lanes import RedisLanes
from sev.store.mongo import MongoStore
from sev.tokens import TokenKeeper
from sev.twitch import TwitchClient, TwitchError
from sev.web import auth, pages, webhook
from sev.web.deps import LoginRequired, Services, StoreDep
from sev.web.security import SecurityHeaders, redact_access_log
from sev.web.templating import STATIC_DIR, render

log = logging.getLogger("sev")
# Favourite changes a user may make: each can create ~6 subscriptions that cost budget.
FAVOURITE_CHANGES = 10
FAVOURITE_WINDOW_S = 600.0


def _client_manager(settings: Settings) -> RedisFanout | None:
    if settings.redis_url is None:
        return None
    return RedisFanout(
        settings.redis_url.get_secret_value(),
        room_prefix=room_of(""),
        secret=settings.secret("session"),
    )


def create_app(settings: Settings | None = None) -> socketio.ASGIApp:
    """Build SEV: FastAPI app + Socket.IO server, with everything long-lived in the lifespan."""
    settings = settings.resolve() if settings is not None else load_settings()
    logging.basicConfig(
        level=settings.sev_log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # httpx logs every request at INFO: too chatty for a webhook receiver.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    redact_access_log()
    store = create_store(settings)
    fanout = _client_manager(settings)
    lanes = None
    if settings.redis_url is not None and isinstance(store, MongoStore):
        # Several processes: each broadcaster's batches are numbered one writer at a time.
        lanes = store.lanes = RedisLanes(
            settings.redis_url.get_secret_value(), secret=settings.secret("session")
        )
    live = Live(settings, store, fanout)
    simulator = None
    if settings.demo:
        from twitchsim import SimulatorConfig, create_simulator

        simulator = create_simulator(
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

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if settings.demo:
            log.warning(
                "DEMO MODE: simulated Twitch at %s%s; demo accounts can log in. "
                "Set TWITCH_CLIENT_ID and TWITCH_CLIENT_SECRET for real Twitch.",
                settings.sev_public_url,
                SIMULATOR_MOUNT,
            )
        await store.open()
        if fanout is not None:
            await fanout.start()
        async with httpx.AsyncClient(timeout=httpx.Timeout(10.0, connect=5.0)) as http:
            twitch = TwitchClient(
                http,
                client_id=settings.twitch_client_id or "",
                client_secret=settings.secret("client"),
                api_url=settings.twitch_api_url,
                auth_url=settings.twitch_auth_url,
            )
            subscriptions = Subscriptions(settings, store, twitch, live.notify)
            profiles = Profiles(
                twitch,
                demo_images=(
                    f"{settings.sev_public_url}{SIMULATOR_MOUNT}{DEMO_IMAGES}"
                    if settings.demo
                    else None
                ),
            )
            # The actors' pictures, looked up after storing (never before an acknowledgement).
            ingestor = Ingestor(store, live.publish, prepare=profiles.with_faces)
            live.faces = profiles.with_faces
            duties = Duties(store)
            receiver = Receiver(settings, store, ingestor, subscriptions, live.end_sessions)
            log.info("%s", settings.transport_reason())
            sockets: SocketTransport | None = None
            if settings.eventsub_transport == "websocket":
                sockets = SocketTransport(
                    settings,
                    store,
                    twitch,
                    receive=receiver.receive,
                    note_refusals=subscriptions.note_refusals,
                    check_token=TokenKeeper(store, twitch, subscriptions, live.end_sessions).check,
                    holder=duties.holder,
                )
                subscriptions.plan_again = sockets.wake
            else:
                duties.add("reconcile", settings.sev_reconcile_interval_s, subscriptions.reconcile)
            retention = Retention(store, settings.sev_event_retention_days)
            duties.add("retention", PRUNE_INTERVAL_S, retention.run)
            auth.add_duties(duties, settings, store, twitch, subscriptions, live.end_sessions)
            app.state.services = Services(
                settings=settings,
                store=store,
                twitch=twitch,
                live=live,
                ingestor=ingestor,
                subscriptions=subscriptions,
                favourite_changes=RateLimiter(FAVOURITE_CHANGES, FAVOURITE_WINDOW_S),
                profiles=profiles,
                receiver=receiver,
            )
            await ingestor.start()
            if simulator is not None:
                await simulator.start()
            await duties.start()
            if sockets is not None:
                await sockets.start()
            gc_defaults = tune_gc()
            try:
                yield
            finally:
                restore_gc(gc_defaults)
                if sockets is not None:
                    await sockets.stop()
                await duties.stop()
                if simulator is not None:
                    await simulator.stop()
                await ingestor.stop()
                if fanout is not None:
                    await fanout.stop()
                await store.close()
                if lanes is not None:
                    await lanes.close()

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
    if fanout is not None:
        app.add_middleware(RequireRedis, url=fanout.redis_url)
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

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    if simulator is not None:
        app.mount(SIMULATOR_MOUNT, simulator.app)
    # No on_startup/on_shutdown here, so lifespan events reach FastAPI (docs/PITFALLS.md).
    return socketio.ASGIApp(live.sio, other_asgi_app=app, socketio_path="socket.io")


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
