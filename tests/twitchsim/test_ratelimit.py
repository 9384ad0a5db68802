"""The simulated Twitch's Helix rate limit (twitchsim/ratelimit.py): a bucket per authenticated
caller, charged only after authentication, over real HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio

from tests.support.simworld import STREAMER, VIEWER, Servers, World, make_world
from twitchsim import DEMO_CLIENT_ID, SimulatorConfig

pytestmark = pytest.mark.asyncio(loop_scope="module")

POINTS = 3
RATE_LIMIT_HEADERS = {"ratelimit-limit", "ratelimit-remaining", "ratelimit-reset"}


@pytest_asyncio.fixture(loop_scope="module")
async def world(servers: Servers, http: httpx.AsyncClient) -> AsyncIterator[World]:
    config = SimulatorConfig(rate_limit_points=POINTS, rate_limit_window_s=3600)
    async with make_world(servers, http, config) as running:
        yield running


async def test_requests_that_fail_authentication_drain_no_bucket(world: World) -> None:
    users = f"{world.base}/helix/users"
    subscriptions = f"{world.base}/helix/eventsub/subscriptions"
    # Anyone can name the app's client id; only its token spends the app's points.
    strangers = [
        {"Client-Id": DEMO_CLIENT_ID},
        {"Client-Id": DEMO_CLIENT_ID, "Authorization": "Bearer made-up-token"},
        {"Client-Id": DEMO_CLIENT_ID, "Authorization": "OAuth made-up-token"},
    ]
    answers = await asyncio.gather(
        *(
            world.http.get(
                users if i % 2 else subscriptions,
                params={"login": STREAMER},
                headers=strangers[i % len(strangers)],
            )
            for i in range(200)
        )
    )
    assert {a.status_code for a in answers} == {401}
    # Nothing was charged, so there is no bucket to report on.
    assert all(not RATE_LIMIT_HEADERS & set(a.headers) for a in answers)
    real = await world.http.get(
        users, params={"login": STREAMER}, headers=world.headers(await world.app_token())
    )
    assert real.status_code == 200
    assert real.headers["ratelimit-limit"] == str(POINTS)
    assert real.headers["ratelimit-remaining"] == str(POINTS - 1)


async def test_user_tokens_draw_on_a_bucket_per_user_apart_from_the_apps(world: World) -> None:
    url = f"{world.base}/helix/users"
    app = world.headers(await world.app_token())
    for _ in range(POINTS):
        assert (await world.http.get(url, params={"login": STREAMER}, headers=app)).is_success
    spent = await world.http.get(url, params={"login": STREAMER}, headers=app)
    assert spent.status_code == 429
    assert spent.headers["ratelimit-remaining"] == "0"
    for login in (VIEWER, "lurker_lou"):
        user = world.headers((await world.user_tokens(login))["access_token"])
        mine = await world.http.get(url, headers=user)
        assert mine.status_code == 200
        assert mine.headers["ratelimit-remaining"] == str(POINTS - 1)
    # A second token of the same user draws on that user's bucket, not a new one.
    again = world.headers((await world.user_tokens(VIEWER))["access_token"])
    second = await world.http.get(url, headers=again)
    assert second.headers["ratelimit-remaining"] == str(POINTS - 2)
