"""Favourite → shared EventSub subscriptions, against the simulated Twitch over real HTTP.

SEV and the simulated Twitch run as separate processes; users are created through the store
(login has its own tests) and carry a session cookie signed with SEV's session secret.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from sev.crypto import TokenCipher
from sev.store import Store, User
from sev.store.sqlite import SqliteStore
from tests.factories import session_cookie
from tests.sev_server import SevProcess, SimulatorProcess

PUBLIC_SET = 6  # stream.online, stream.offline, channel.update, raid to, raid from, user.update


@pytest.fixture
def simulator(tmp_path: Path) -> Iterator[SimulatorProcess]:
    process = SimulatorProcess(tmp_path)
    process.start()
    yield process
    process.stop()


@pytest.fixture
def sev(simulator: SimulatorProcess, tmp_path: Path) -> Iterator[SevProcess]:
    process = SevProcess.against(
        simulator, tmp_path, env={"SEV_RECONCILE_INTERVAL_S": "0.5", "SEV_RELEASE_GRACE_S": "1"}
    )
    process.start()
    yield process
    process.stop()


@pytest.fixture
async def store(sev: SevProcess) -> AsyncIterator[Store]:
    """The SEV process's own store file (SQLite allows a second process; WAL)."""
    opened = SqliteStore(sev.data_dir / "sev.sqlite3", TokenCipher(sev.env["SEV_TOKEN_KEY"]))
    await opened.open()
    yield opened
    await opened.close()


@pytest.fixture
async def viewer(
    sev: SevProcess, store: Store
) -> AsyncIterator[Callable[[str], httpx.AsyncClient]]:
    clients: list[httpx.AsyncClient] = []

    def make(user_id: str) -> httpx.AsyncClient:
        cookie = session_cookie(sev.env["SEV_SESSION_SECRET"], user_id=user_id, csrf="t0ken")
        client = httpx.AsyncClient(base_url=sev.url, cookies={"sev_session": cookie}, timeout=20)
        clients.append(client)
        return client

    for user_id in ("501", "502"):
        await store.save_user(
            User(id=user_id, login=f"viewer{user_id}", display_name=f"Viewer{user_id}")
        )
    yield make
    for client in clients:
        await client.aclose()


async def _favourite(client: httpx.AsyncClient, streamer: str) -> httpx.Response:
    return await client.post("/favorite", data={"streamer": streamer, "csrf_token": "t0ken"})


def _subscriptions_of(simulator: SimulatorProcess, broadcaster_id: str) -> list[dict[str, Any]]:
    return [s for s in simulator.subscriptions() if broadcaster_id in s["condition"].values()]


async def _eventually(check: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.2)


async def _streamer_id(simulator: SimulatorProcess, login: str) -> str:
    accounts = httpx.get(f"{simulator.url}/control/accounts", timeout=10).json()["data"]
    return str(next(a["id"] for a in accounts if a["login"] == login))


async def test_favourite_creates_the_public_subscriptions_once_for_two_viewers(
    simulator: SimulatorProcess, viewer: Callable[[str], httpx.AsyncClient], store: Store
) -> None:
    streamer_id = await _streamer_id(simulator, "pixelpaladin")
    first = await _favourite(viewer("501"), "  PixelPaladin ")
    assert first.status_code == 303
    assert first.headers["location"] == "/streamers/pixelpaladin"
    second = await _favourite(viewer("502"), "pixelpaladin")
    assert second.status_code == 303
    await _eventually(
        lambda: (
            len(_subscriptions_of(simulator, streamer_id)) == PUBLIC_SET
            and all(s["status"] == "enabled" for s in _subscriptions_of(simulator, streamer_id))
        )
    )
    # The verification challenge reached SEV's webhook and was answered right.
    assert len(_subscriptions_of(simulator, streamer_id)) == PUBLIC_SET
    assert await store.favorite_count(streamer_id) == 2
    assert len(await store.list_subscriptions(streamer_id)) == PUBLIC_SET


async def test_last_viewer_leaving_releases_the_subscriptions_after_the_grace(
    simulator: SimulatorProcess, viewer: Callable[[str], httpx.AsyncClient]
) -> None:
    streamer_id = await _streamer_id(simulator, "pixelpaladin")
    other_id = await _streamer_id(simulator, "cozycrumpet")
    alice, bob = viewer("501"), viewer("502")
    assert (await _favourite(alice, "pixelpaladin")).status_code == 303
    assert (await _favourite(bob, "pixelpaladin")).status_code == 303
    assert (await _favourite(alice, "cozycrumpet")).status_code == 303
    await asyncio.sleep(2.5)  # longer than grace + reconcile interval: Bob still favours it
    assert len(_subscriptions_of(simulator, streamer_id)) == PUBLIC_SET
    assert (await _favourite(bob, "cozycrumpet")).status_code == 303
    await _eventually(lambda: _subscriptions_of(simulator, streamer_id) == [])
    assert len(_subscriptions_of(simulator, other_id)) == PUBLIC_SET


@pytest.mark.parametrize(
    ("streamer", "status", "message"),
    [
        ("not a login!", 422, "1 to 25 letters"),
        ("x" * 26, 422, "1 to 25 letters"),
        ("", 422, "1 to 25 letters"),
        ("nobody_by_this_name", 404, "no Twitch channel"),
    ],
)
async def test_favourite_refuses_bad_names_and_saves_nothing(
    viewer: Callable[[str], httpx.AsyncClient],
    store: Store,
    streamer: str,
    status: int,
    message: str,
) -> None:
    response = await _favourite(viewer("501"), streamer)
    assert response.status_code == status
    assert message in response.text
    assert 'name="streamer"' in response.text  # the form again, with the error in place
    user = await store.get_user("501")
    assert user is not None and user.favorite_id is None
    assert await store.list_broadcasters() == []


async def test_favourite_answers_503_when_twitch_is_down_and_saves_nothing(
    simulator: SimulatorProcess, viewer: Callable[[str], httpx.AsyncClient], store: Store
) -> None:
    simulator.stop()
    response = await _favourite(viewer("501"), "pixelpaladin")
    assert response.status_code == 503
    assert "Twitch is not answering" in response.text
    user = await store.get_user("501")
    assert user is not None and user.favorite_id is None


async def test_favourite_needs_the_csrf_token(
    viewer: Callable[[str], httpx.AsyncClient], store: Store
) -> None:
    response = await viewer("501").post("/favorite", data={"streamer": "pixelpaladin"})
    assert response.status_code == 403
    user = await store.get_user("501")
    assert user is not None and user.favorite_id is None


async def test_favourite_needs_a_session(sev: SevProcess) -> None:
    async with httpx.AsyncClient(base_url=sev.url) as anonymous:
        response = await anonymous.post("/favorite", data={"streamer": "pixelpaladin"})
    assert response.status_code in (303, 403)
    assert "/streamers/" not in response.headers.get("location", "")


async def test_reconcile_recreates_a_subscription_deleted_at_twitch(
    simulator: SimulatorProcess, viewer: Callable[[str], httpx.AsyncClient]
) -> None:
    streamer_id = await _streamer_id(simulator, "speedrunsally")
    assert (await _favourite(viewer("501"), "speedrunsally")).status_code == 303
    await _eventually(lambda: len(_subscriptions_of(simulator, streamer_id)) == PUBLIC_SET)
    victim = _subscriptions_of(simulator, streamer_id)[0]
    token = httpx.post(
        f"{simulator.url}/oauth2/token",
        data={
            "client_id": "sevdemo0simulated0client000001",
            "client_secret": "sevdemo0secret0only0valid0here",
            "grant_type": "client_credentials",
        },
        timeout=10,
    ).json()["access_token"]
    deleted = httpx.delete(
        f"{simulator.url}/helix/eventsub/subscriptions",
        params={"id": victim["id"]},
        timeout=10,
        headers={"Authorization": f"Bearer {token}", "Client-Id": "sevdemo0simulated0client000001"},
    )
    assert deleted.status_code == 204
    await _eventually(
        lambda: any(
            s["type"] == victim["type"]
            and s["id"] != victim["id"]
            and s["condition"] == victim["condition"]
            for s in _subscriptions_of(simulator, streamer_id)
        )
    )
    assert len(_subscriptions_of(simulator, streamer_id)) == PUBLIC_SET
