"""The real TwitchClient against the simulated Twitch, over real HTTP."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import pytest_asyncio

from sev.twitch import (
    Subscription,
    SubscriptionConflict,
    TokenSet,
    TwitchAuthError,
    TwitchClient,
    TwitchError,
    TwitchForbidden,
    TwitchUnavailable,
)
from tests.support.polling import eventually
from tests.support.servers import Receiver, Swappable, serve_all
from twitchsim import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, Simulator, SimulatorConfig

SECRET = "s3cret-for-tests"
REDIRECT = "http://localhost:8000/auth/callback"
STREAMER, STREAMER_ID = "pixelpaladin", "41000001"
VIEWER, VIEWER_ID = "viewer_vic", "42000001"

pytestmark = pytest.mark.asyncio(loop_scope="module")


@dataclass
class Servers:
    receiver: Swappable
    simulator: Swappable
    receiver_base: str
    base: str


@dataclass
class Setup:
    """A running simulator and receiver, and a TwitchClient pointed at the simulator."""

    sim: Simulator
    receiver: Receiver
    client: TwitchClient
    http: httpx.AsyncClient
    base: str
    callback: str
    requests: list[httpx.Request] = field(default_factory=list)

    def calls(self, path: str) -> int:
        return sum(1 for r in self.requests if r.url.path.endswith(path))

    async def user_tokens(self, login: str, scopes: list[str]) -> TokenSet:
        response = await self.http.get(
            f"{self.base}/oauth2/authorize",
            params={
                "client_id": DEMO_CLIENT_ID,
                "redirect_uri": REDIRECT,
                "response_type": "code",
                "scope": " ".join(scopes),
                "login": login,
                "decision": "authorize",
            },
        )
        code = parse_qs(urlsplit(response.headers["location"]).query)["code"][0]
        return await self.client.exchange_code(code, REDIRECT)

    async def create(
        self, user_id: str = STREAMER_ID, type_: str = "stream.online"
    ) -> Subscription:
        return await self.client.create_subscription(
            type_, "1", {"broadcaster_user_id": user_id}, self.callback, SECRET
        )


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def servers() -> AsyncIterator[Servers]:
    receiver, simulator = Swappable(), Swappable()
    async with serve_all(receiver, simulator, lifespan="off") as (receiver_base, base):
        yield Servers(receiver, simulator, receiver_base, base)


@asynccontextmanager
async def make_setup(
    servers: Servers, config: SimulatorConfig | None = None, **client_options: Any
) -> AsyncIterator[Setup]:
    sim, receiver = Simulator(config or SimulatorConfig(seed=5)), Receiver()
    servers.simulator.app, servers.receiver.app = sim.app, receiver.app
    requests: list[httpx.Request] = []

    async def record(request: httpx.Request) -> None:
        requests.append(request)

    await sim.start()
    try:
        async with httpx.AsyncClient(
            trust_env=False, timeout=5, event_hooks={"request": [record]}
        ) as http:
            client = TwitchClient(
                http,
                client_id=DEMO_CLIENT_ID,
                client_secret=DEMO_CLIENT_SECRET,
                api_url=f"{servers.base}/helix",
                auth_url=f"{servers.base}/oauth2",
                **client_options,
            )
            callback = f"{servers.receiver_base}/webhook"
            yield Setup(sim, receiver, client, http, servers.base, callback, requests)
    finally:
        await sim.stop()
        servers.simulator.app = servers.receiver.app = None


@pytest_asyncio.fixture(loop_scope="module")
async def setup(servers: Servers) -> AsyncIterator[Setup]:
    async with make_setup(servers) as running:
        yield running


async def test_app_token_is_fetched_once_and_cached(setup: Setup) -> None:
    first = await setup.client.app_token()
    assert await setup.client.app_token() == first
    await setup.client.get_users(logins=[STREAMER])
    await setup.client.get_users(ids=[VIEWER_ID])
    assert setup.calls("/oauth2/token") == 1
    assert setup.requests[-1].headers["client-id"] == DEMO_CLIENT_ID
    assert setup.requests[-1].headers["authorization"] == f"Bearer {first}"


async def test_app_token_is_renewed_once_after_a_401(setup: Setup) -> None:
    first = await setup.client.app_token()
    setup.sim.tokens.forget_app_tokens()
    (user,) = await setup.client.get_users(logins=[STREAMER])
    assert user.id == STREAMER_ID
    assert await setup.client.app_token() != first
    assert setup.calls("/oauth2/token") == 2
    assert setup.calls("/helix/users") == 2  # the refused call, then its one retry


async def test_wrong_credentials_are_an_auth_error(servers: Servers) -> None:
    async with make_setup(servers) as running:
        running.client._client_secret = "wrong"
        with pytest.raises(TwitchAuthError) as raised:
            await running.client.get_users(logins=[STREAMER])
        assert raised.value.status == 403
        assert "wrong" not in str(raised.value)


async def test_get_users_by_login_and_id_leaves_unknown_out(setup: Setup) -> None:
    users = await setup.client.get_users(
        logins=["PixelPaladin", "nobody_here"], ids=[VIEWER_ID, "1"]
    )
    assert {u.login for u in users} == {STREAMER, VIEWER}
    streamer = next(u for u in users if u.login == STREAMER)
    assert streamer.display_name == "PixelPaladin"
    assert streamer.broadcaster_type == "partner"
    assert streamer.profile_image_url.startswith("data:image/svg+xml")
    assert await setup.client.get_users() == []
    assert setup.calls("/helix/users") == 1


async def test_get_users_batches_by_100(setup: Setup) -> None:
    logins = [f"ghost_{n}" for n in range(180)] + [STREAMER]
    users = await setup.client.get_users(logins=logins, ids=[VIEWER_ID])
    assert {u.id for u in users} == {STREAMER_ID, VIEWER_ID}
    assert setup.calls("/helix/users") == 2
    sizes = [
        len(r.url.params.multi_items()) for r in setup.requests if r.url.path.endswith("/users")
    ]
    assert sizes == [100, 82]


async def test_create_list_paginated_and_delete(setup: Setup) -> None:
    created = [await setup.create(account.id) for account in setup.sim.directory.streamers]
    assert created[0].status == "webhook_callback_verification_pending"
    assert created[0].transport == {"method": "webhook", "callback": setup.callback}
    assert created[0].condition == {"broadcaster_user_id": STREAMER_ID}
    assert created[0].cost == 1
    await eventually(lambda: all(s.status == "enabled" for s in setup.sim.subscriptions.values()))
    listed = [s async for s in setup.client.list_subscriptions(first=4)]
    assert [s.id for s in listed] == [s.id for s in created]
    assert {s.status for s in listed} == {"enabled"}
    assert setup.calls("/eventsub/subscriptions") == len(created) + 2  # two pages
    only = [s async for s in setup.client.list_subscriptions(subscription_id=created[2].id)]
    assert [s.id for s in only] == [created[2].id]
    assert await setup.client.delete_subscription(created[0].id) is True
    assert await setup.client.delete_subscription(created[0].id) is False
    assert len([s async for s in setup.client.list_subscriptions(type="stream.online")]) == 5


async def test_list_accepts_at_most_one_filter(setup: Setup) -> None:
    with pytest.raises(ValueError, match="at most one filter"):
        _ = [s async for s in setup.client.list_subscriptions(type="a", status="enabled")]
    with pytest.raises(ValueError, match="at most one filter"):
        _ = [s async for s in setup.client.list_subscriptions(colour="red")]


async def test_duplicate_create_is_a_conflict(setup: Setup) -> None:
    await setup.create()
    with pytest.raises(SubscriptionConflict) as raised:
        await setup.create()
    assert raised.value.status == 409


async def test_scoped_create_without_grant_is_forbidden(setup: Setup) -> None:
    with pytest.raises(TwitchForbidden):
        await setup.create(type_="channel.cheer")
    await setup.user_tokens(STREAMER, ["bits:read"])
    created = await setup.create(type_="channel.cheer")
    assert created.cost == 0


async def test_bad_request_is_a_twitch_error_with_its_status(setup: Setup) -> None:
    with pytest.raises(TwitchError) as raised:
        await setup.client.create_subscription(
            "stream.online", "1", {"broadcaster_user_id": STREAMER_ID}, setup.callback, "short"
        )
    assert raised.value.status == 400
    assert "secret" in str(raised.value)


async def test_validate_refresh_and_revoke(setup: Setup) -> None:
    tokens = await setup.user_tokens(STREAMER, ["bits:read", "channel:read:polls"])
    assert tokens.scope == ["bits:read", "channel:read:polls"]
    info = await setup.client.validate_token(tokens.access_token)
    assert info is not None
    assert (info.login, info.user_id, info.client_id) == (STREAMER, STREAMER_ID, DEMO_CLIENT_ID)
    assert info.scopes == ["bits:read", "channel:read:polls"]
    assert await setup.client.validate_token("not-a-token") is None

    renewed = await setup.client.refresh_token(tokens.refresh_token)
    assert renewed.refresh_token != tokens.refresh_token
    assert await setup.client.validate_token(renewed.access_token) is not None
    with pytest.raises(TwitchAuthError):
        await setup.client.refresh_token(tokens.refresh_token)  # rotated away

    await setup.client.revoke_token(renewed.access_token)
    assert await setup.client.validate_token(renewed.access_token) is None
    with pytest.raises(TwitchAuthError):
        await setup.client.refresh_token(renewed.refresh_token)
    await setup.client.revoke_token(renewed.access_token)  # already gone: not an error
    assert renewed.access_token not in repr(renewed)
    assert renewed.refresh_token not in repr(renewed)


async def test_expired_user_token_validates_as_none(setup: Setup) -> None:
    tokens = await setup.user_tokens(VIEWER, [])
    setup.sim.tokens.expire(tokens.access_token)
    assert await setup.client.validate_token(tokens.access_token) is None
    renewed = await setup.client.refresh_token(tokens.refresh_token)
    assert await setup.client.validate_token(renewed.access_token) is not None


async def test_rate_limit_is_waited_out(servers: Servers) -> None:
    config = SimulatorConfig(rate_limit_points=2, rate_limit_window_s=1)
    async with make_setup(servers, config) as running:
        started = time.monotonic()
        for _ in range(5):
            (user,) = await running.client.get_users(logins=[STREAMER])
            assert user.id == STREAMER_ID
        assert time.monotonic() - started < 8


async def test_429_is_retried_after_the_reset(servers: Servers) -> None:
    config = SimulatorConfig(rate_limit_points=1, rate_limit_window_s=1)
    async with make_setup(servers, config) as running:
        await running.client.get_users(logins=[STREAMER])  # empties the client id's bucket
        other = TwitchClient(  # another process of the same app: it has not seen the headers
            running.http,
            client_id=DEMO_CLIENT_ID,
            client_secret=DEMO_CLIENT_SECRET,
            api_url=f"{servers.base}/helix",
            auth_url=f"{servers.base}/oauth2",
        )
        before = running.calls("/helix/users")
        (user,) = await other.get_users(logins=[STREAMER])
        assert user.id == STREAMER_ID
        assert running.calls("/helix/users") - before == 2  # a 429, then the retry


class FakeClock:
    """Epoch seconds that move only when the client sleeps; records every sleep."""

    def __init__(self) -> None:
        self.now = time.time()
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


async def test_rate_limit_gives_up_after_the_bound(servers: Servers) -> None:
    config = SimulatorConfig(rate_limit_points=1, rate_limit_window_s=60)
    clock = FakeClock()
    async with make_setup(
        servers, config, max_rate_limit_wait_s=5, clock=clock, sleep=clock.sleep
    ) as running:
        await running.client.get_users(logins=[STREAMER])
        with pytest.raises(TwitchUnavailable) as raised:
            await running.client.get_users(logins=[STREAMER])
        assert raised.value.status == 429
    # It waited towards the bucket's reset (a minute away), and no longer than the bound.
    assert clock.slept and sum(clock.slept) == pytest.approx(5)
    # The call that emptied the bucket, then one try once the bound was waited out (a 429).
    assert running.calls("/helix/users") == 2


async def test_unreachable_twitch_is_unavailable() -> None:
    async with httpx.AsyncClient(trust_env=False, timeout=2) as http:
        client = TwitchClient(
            http,
            client_id=DEMO_CLIENT_ID,
            client_secret=DEMO_CLIENT_SECRET,
            api_url="http://127.0.0.1:9/helix",
            auth_url="http://127.0.0.1:9/oauth2",
        )
        with pytest.raises(TwitchUnavailable) as raised:
            await client.get_users(logins=[STREAMER])
        assert raised.value.status is None
        with pytest.raises(TwitchUnavailable):
            await client.validate_token("anything")


async def test_server_errors_are_unavailable() -> None:
    def failing(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503, json={"error": "Service Unavailable", "status": 503})

    async with httpx.AsyncClient(transport=httpx.MockTransport(failing)) as http:
        client = TwitchClient(
            http,
            client_id=DEMO_CLIENT_ID,
            client_secret=DEMO_CLIENT_SECRET,
            api_url="http://twitch.invalid/helix",
            auth_url="http://twitch.invalid/oauth2",
        )
        with pytest.raises(TwitchUnavailable) as raised:
            await client.app_token()
        assert raised.value.status == 503
