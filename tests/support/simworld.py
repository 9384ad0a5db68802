"""A simulated Twitch in-process and a recording webhook receiver, with helpers that speak to
them as an app would (tests of `twitchsim`; imports nothing of SEV)."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from tests.support.polling import eventually
from tests.support.servers import Delivery, Receiver, Swappable
from twitchsim import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, Simulator, SimulatorConfig
from twitchsim.catalog import CATALOG

SECRET = "s3cret-for-tests"
REDIRECT = "http://localhost:8000/auth/callback"
STREAMER, STREAMER_ID = "pixelpaladin", "41000001"
VIEWER, VIEWER_ID = "viewer_vic", "42000001"
FAST = SimulatorConfig(delivery_timeout_s=0.5, retry_delays_s=(0.05, 0.1), seed=7)


def expected_signature(secret: str, delivery: Delivery) -> str:
    """Twitch's HMAC, computed here from the raw bytes the receiver got."""
    message = (
        delivery.headers["twitch-eventsub-message-id"].encode()
        + delivery.headers["twitch-eventsub-message-timestamp"].encode()
        + delivery.body
    )
    return "sha256=" + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def condition_for(type_: str, user_id: str = STREAMER_ID) -> dict[str, str]:
    """A valid condition of this type for one user."""
    spec = CATALOG[type_]
    if spec.one_of:
        return {"to_broadcaster_user_id": user_id}
    return dict.fromkeys(spec.condition, user_id)


@dataclass
class World:
    """A running simulator, a receiver, and helpers that speak to them as an app would."""

    sim: Simulator
    base: str
    http: httpx.AsyncClient
    receiver: Receiver
    callback: str

    async def app_token(self) -> str:
        response = await self.http.post(
            f"{self.base}/oauth2/token",
            data={
                "client_id": DEMO_CLIENT_ID,
                "client_secret": DEMO_CLIENT_SECRET,
                "grant_type": "client_credentials",
            },
        )
        assert response.status_code == 200, response.text
        return str(response.json()["access_token"])

    @staticmethod
    def headers(token: str, client_id: str = DEMO_CLIENT_ID) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}", "Client-Id": client_id}

    async def authorize(self, login: str, scopes: list[str], **extra: str) -> httpx.Response:
        params = {
            "client_id": DEMO_CLIENT_ID,
            "redirect_uri": REDIRECT,
            "response_type": "code",
            "scope": " ".join(scopes),
            "state": "st4te",
            "login": login,
            "decision": "authorize",
            **extra,
        }
        return await self.http.get(f"{self.base}/oauth2/authorize", params=params)

    async def user_tokens(self, login: str, scopes: list[str] | None = None) -> dict[str, Any]:
        response = await self.authorize(login, scopes or [])
        assert response.status_code == 302, response.text
        code = parse_qs(urlsplit(response.headers["location"]).query)["code"][0]
        response = await self.token(grant_type="authorization_code", code=code)
        assert response.status_code == 200, response.text
        return dict(response.json())

    async def token(self, **form: str) -> httpx.Response:
        data = {
            "client_id": DEMO_CLIENT_ID,
            "client_secret": DEMO_CLIENT_SECRET,
            "redirect_uri": REDIRECT,
            **form,
        }
        return await self.http.post(f"{self.base}/oauth2/token", data=data)

    def body(self, type_: str = "stream.online", **condition: str) -> dict[str, Any]:
        return {
            "type": type_,
            "version": CATALOG[type_].version if type_ in CATALOG else "1",
            "condition": condition or condition_for(type_),
            "transport": {"method": "webhook", "callback": self.callback, "secret": SECRET},
        }

    async def create(self, body: Any, token: str | None = None, **headers: str) -> httpx.Response:
        token = token or await self.app_token()
        return await self.http.post(
            f"{self.base}/helix/eventsub/subscriptions",
            json=body,
            headers={**self.headers(token), **headers},
        )

    async def subscribe(self, type_: str = "stream.online", **condition: str) -> dict[str, Any]:
        response = await self.create(self.body(type_, **condition))
        assert response.status_code == 202, response.text
        sub = response.json()["data"][0]
        await eventually(lambda: self.sim.subscriptions[sub["id"]].status != sub["status"])
        assert self.sim.subscriptions[sub["id"]].status == "enabled"
        return dict(sub)

    async def notifications(self, count: int, *, timeout: float = 5) -> list[Delivery]:
        await eventually(
            lambda: len(self.receiver.of_type("notification")) >= count, timeout=timeout
        )
        return self.receiver.of_type("notification")


@dataclass
class Servers:
    """A receiver and a simulated Twitch served on free ports (tests/twitchsim/conftest.py),
    each with its app swapped in per test."""

    receiver: Swappable
    simulator: Swappable
    receiver_base: str
    base: str


@asynccontextmanager
async def make_world(
    servers: Servers, http: httpx.AsyncClient, config: SimulatorConfig = FAST
) -> AsyncIterator[World]:
    """A fresh simulator and receiver behind `servers`, started and stopped as a host that
    mounts the simulator would."""
    receiver = Receiver()
    world = World(
        Simulator(config), servers.base, http, receiver, f"{servers.receiver_base}/webhook"
    )
    servers.receiver.app, servers.simulator.app = receiver.app, world.sim.app
    await world.sim.start()
    try:
        yield world
    finally:
        # The simulator of the moment: a test may have restarted it (`restart`).
        await world.sim.stop()
        servers.receiver.app = servers.simulator.app = None


async def restart(servers: Servers, world: World, config: SimulatorConfig) -> Simulator:
    """Stop the world's simulator and start a new one with `config` at the same address, as a
    restarted process would be; returns the old one."""
    old = world.sim
    await old.stop()
    world.sim = Simulator(config)
    servers.simulator.app = world.sim.app
    await world.sim.start()
    return old
