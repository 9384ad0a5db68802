"""The twitchsim tests' servers: one receiver and one simulated Twitch per module (uvicorn takes
0.2 s to stop), each test putting its own apps behind them (tests/support/simworld.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest_asyncio

from tests.support.servers import Swappable, serve_all
from tests.support.simworld import Servers


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def servers() -> AsyncIterator[Servers]:
    receiver, simulator = Swappable(), Swappable()
    async with serve_all(receiver, simulator, lifespan="off", ws="websockets-sansio") as (
        receiver_base,
        base,
    ):
        yield Servers(receiver, simulator, receiver_base, base)


@pytest_asyncio.fixture(loop_scope="module")
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(trust_env=False, timeout=5) as client:
        yield client
