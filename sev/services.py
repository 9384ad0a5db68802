"""The composition root: SEV's long-lived services, built in dependency order, started and stopped.

`open_services` is what the app's lifespan enters. It builds every service with its collaborators
passed to the constructor, registers every background duty (once, here), starts what runs, and
stops it all in reverse order. `Services` is what routes get of it (through `sev.web.deps`).
Imports the services' own layers; never the web routes or the app.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

import httpx

from sev.config import SIMULATOR_MOUNT, Settings
from sev.eventsub.ingest import Ingestor
from sev.eventsub.receiver import Receiver
from sev.eventsub.subscriptions import Subscriptions
from sev.eventsub.websocket import SocketTransport
from sev.gc_tuning import restore_gc, tune_gc
from sev.jobs import Duties
from sev.live import Live
from sev.profiles import DEMO_IMAGES, Profiles
from sev.ratelimit import RateLimiter
from sev.retention import PRUNE_INTERVAL_S, Retention
from sev.store import Store, create_store
from sev.store.lanes import RedisLanes
from sev.tokens import TokenKeeper
from sev.twitch import TwitchClient

if TYPE_CHECKING:
    import socketio

    from twitchsim import Simulator

log = logging.getLogger("sev")
# Favourite changes a user may make: each can create ~6 subscriptions that cost budget.
FAVOURITE_CHANGES = 10
FAVOURITE_WINDOW_S = 600.0


@dataclass(frozen=True)
class Services:
    """Everything long-lived that `open_services` opens, handed to routes as one typed object."""

    settings: Settings
    store: Store
    twitch: TwitchClient
    live: Live
    subscriptions: Subscriptions
    # Favourite changes per user: each new favourite can cost EventSub budget.
    favourite_changes: RateLimiter
    # Helix users by login and pictures by id, cached: page views never hammer Twitch.
    profiles: Profiles
    # Where genuine EventSub messages go, from the webhook or the WebSocket transport.
    receiver: Receiver


@asynccontextmanager
async def open_services(
    settings: Settings,
    sio: socketio.AsyncServer,
    simulator: Simulator | None = None,
) -> AsyncIterator[Services]:
    """Build, start and (on exit) stop SEV's services.

    `sio` (from `sev.live.create_server`) and the demo's `simulator` are built with the app,
    which mounts them; they are started and stopped here with the rest.
    """
    if settings.demo:
        log.warning(
            "DEMO MODE: simulated Twitch at %s%s; demo accounts can log in. "
            "Set TWITCH_CLIENT_ID and TWITCH_CLIENT_SECRET for real Twitch.",
            settings.sev_public_url,
            SIMULATOR_MOUNT,
        )
    async with AsyncExitStack() as stack:
        # The HTTP client is closed last, after everything that may still call Twitch.
        http = await stack.enter_async_context(
            httpx.AsyncClient(timeout=httpx.Timeout(10.0, connect=5.0))
        )
        lanes = None
        if settings.redis_url is not None and settings.mongodb_uri is not None:
            # Several processes: each broadcaster's batches are numbered one writer at a time.
            lanes = RedisLanes(
                settings.redis_url.get_secret_value(), secret=settings.secret("session")
            )
            stack.push_async_callback(lanes.close)
        store = create_store(settings, lanes=lanes)
        twitch = TwitchClient(
            http,
            client_id=settings.twitch_client_id or "",
            client_secret=settings.secret("client"),
            api_url=settings.twitch_api_url,
            auth_url=settings.twitch_auth_url,
        )
        demo_images = f"{settings.sev_public_url}{SIMULATOR_MOUNT}{DEMO_IMAGES}"
        profiles = Profiles(twitch, demo_images=demo_images if settings.demo else None)
        live = Live(settings, store, sio, faces=profiles.with_faces)
        # Subscriptions and the WebSocket transport need each other (it asks for subscriptions'
        # refusals and tokens; subscriptions wake it to plan again), so they share the one
        # wake-up event, made first, instead of one being handed to the other afterwards.
        sockets_wanted = settings.eventsub_transport == "websocket"
        wake = asyncio.Event() if sockets_wanted else None
        subscriptions = Subscriptions(
            settings,
            store,
            twitch,
            live.notify,
            plan_again=wake.set if wake is not None else None,
        )
        # The actors' pictures, looked up after storing (never before an acknowledgement).
        ingestor = Ingestor(store, live.publish, prepare=profiles.with_faces)
        receiver = Receiver(settings, store, ingestor, subscriptions, live.end_sessions)
        tokens = TokenKeeper(store, twitch, subscriptions, live.end_sessions)
        duties = Duties(store)
        log.info("%s", settings.transport_reason())
        sockets = None
        if wake is not None:
            sockets = SocketTransport(
                settings,
                store,
                twitch,
                receive=receiver.receive,
                note_refusals=subscriptions.note_refusals,
                check_token=tokens.check,
                holder=duties.holder,
                wake=wake,
            )
        else:
            duties.add("reconcile", settings.sev_reconcile_interval_s, subscriptions.reconcile)
        retention = Retention(store, settings.sev_event_retention_days)
        duties.add("retention", PRUNE_INTERVAL_S, retention.run)
        duties.add("validate-tokens", settings.sev_token_validate_interval_s, tokens.validate_all)

        await store.open()
        stack.push_async_callback(store.close)
        await live.start()
        stack.push_async_callback(live.stop)
        await ingestor.start()
        stack.push_async_callback(ingestor.stop)
        if simulator is not None:
            await simulator.start()
            stack.push_async_callback(simulator.stop)
        await duties.start()
        stack.push_async_callback(duties.stop)
        if sockets is not None:
            await sockets.start()
            stack.push_async_callback(sockets.stop)
        stack.callback(restore_gc, tune_gc())
        yield Services(
            settings=settings,
            store=store,
            twitch=twitch,
            live=live,
            subscriptions=subscriptions,
            favourite_changes=RateLimiter(FAVOURITE_CHANGES, FAVOURITE_WINDOW_S),
            profiles=profiles,
            receiver=receiver,
        )
