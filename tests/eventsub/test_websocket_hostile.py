"""The EventSub WebSocket transport trusts no further than Twitch: real processes (SEV, the
simulated Twitch) with a relay between them that adds, changes and holds frames as someone on
the path could, and a host that is not Twitch's for SEV to be lured to."""

from __future__ import annotations

import asyncio
import json
import threading
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from sev.config import DEMO_CLIENT_ID
from tests.support.login import log_in, set_favourite
from tests.support.polling import eventually
from tests.support.processes import SevProcess, SimulatorProcess
from tests.support.relay import ForeignHost, Link, Relay, notification, reconnect, welcome

PUBLIC_SET = {"stream.online", "stream.offline", "channel.update", "channel.raid", "user.update"}
STREAMER = "pixelpaladin"
VIEWER = "viewer_vic"
KEEPALIVE_S = 2
LONG_AGO = datetime(2001, 9, 9, 1, 46, 40, tzinfo=UTC)


@pytest.fixture
def simulator(tmp_path: Any, processes: list[Any]) -> SimulatorProcess:
    # A grace long enough for a move the relay holds up on purpose.
    simulator = SimulatorProcess(
        tmp_path, extra=["--ws-min-keepalive", "1", "--ws-reconnect-grace", "15"]
    )
    simulator.start()
    processes.append(simulator)
    return simulator


@pytest.fixture
def relay(simulator: SimulatorProcess) -> Iterator[Relay]:
    relay = Relay(f"ws://127.0.0.1:{simulator.port}")
    yield relay
    relay.close()


@pytest.fixture
def sev(
    simulator: SimulatorProcess, relay: Relay, make_sev: Callable[..., SevProcess]
) -> SevProcess:
    return make_sev(
        simulator,
        SEV_EVENTSUB_TRANSPORT="websocket",
        TWITCH_EVENTSUB_WS_URL=f"{relay.url}/ws?keepalive_timeout_seconds={KEEPALIVE_S}",
    )


@pytest.fixture
async def browser() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=20) as client:
        yield client


def _sessions(simulator: SimulatorProcess) -> list[str]:
    return [str(s["id"]) for s in simulator.control("websocket")["data"]]


async def _events(browser: httpx.AsyncClient, sev: SevProcess) -> list[Any]:
    # As the logged-in viewer: a 401 here means the viewer was logged out.
    response = await browser.get(f"{sev.url}/api/streamers/{STREAMER}/events?after=0")
    assert response.status_code == 200, response.text
    return list(response.json()["events"])


async def _watching(
    browser: httpx.AsyncClient, sev: SevProcess, simulator: SimulatorProcess
) -> str:
    """A viewer logs in and favours STREAMER; returns the session carrying its public set."""
    await log_in(browser, sev.url, VIEWER)
    assert (await set_favourite(browser, sev.url, STREAMER)).status_code == 303
    streamer_id = simulator.account_id(STREAMER)

    def carrying() -> str | None:
        subscriptions = simulator.socket_subscriptions(streamer_id)
        sessions = {str(s["transport"]["session_id"]) for s in subscriptions}
        if {s["type"] for s in subscriptions} >= PUBLIC_SET and len(sessions) == 1:
            return sessions.pop()
        return None

    session: str = await eventually(
        carrying, timeout=15, what="the public set subscribed over the viewer's WebSocket"
    )
    return session


async def _stored(
    browser: httpx.AsyncClient, sev: SevProcess, ids: list[str], timeout: float = 10
) -> list[Any]:
    async def check() -> list[Any] | None:
        events = await _events(browser, sev)
        return events if set(ids) <= {e["id"] for e in events} else None

    events: list[Any] = await eventually(check, timeout=timeout, what=f"events {ids} stored")
    return events


def _forged_cheer(subscription_id: str, broadcaster_id: str, sent_at: datetime | None) -> str:
    event = {
        "is_anonymous": False,
        "user_id": "1337",
        "user_login": "mallory",
        "user_name": "Mallory",
        "broadcaster_user_id": broadcaster_id,
        "broadcaster_user_login": STREAMER,
        "broadcaster_user_name": STREAMER,
        "message": "forged",
        "bits": 1_000_000,
    }
    condition = {"broadcaster_user_id": broadcaster_id}
    return notification(subscription_id, "channel.cheer", "1", condition, event, sent_at)


def _message_id(frame: str) -> str:
    return str(json.loads(frame)["metadata"]["message_id"])


async def test_a_reconnect_to_a_host_that_is_not_twitchs_is_not_followed(
    simulator: SimulatorProcess, relay: Relay, sev: SevProcess, browser: httpx.AsyncClient
) -> None:
    session = await _watching(browser, sev, simulator)
    streamer_id = simulator.account_id(STREAMER)
    forged = _forged_cheer(str(uuid.uuid4()), streamer_id, LONG_AGO)
    foreign = ForeignHost(lambda: [welcome(1.7e308), forged])
    try:
        relay.inject(reconnect(f"{foreign.url}/ws"))
        # Read after the reconnect on the same connection: by the time it is stored, SEV has
        # decided about the move.
        sent = simulator.trigger("channel.update", STREAMER)
        await _stored(browser, sev, sent)
        await asyncio.sleep(1)
        assert foreign.connections == []
        assert "is not Twitch's; not followed" in sev.logs()
        # The connection to Twitch is kept and still delivers.
        assert _sessions(simulator) == [session]
        later = simulator.trigger("stream.online", STREAMER)
        events = await _stored(browser, sev, later)
        assert _message_id(forged) not in {e["id"] for e in events}
    finally:
        foreign.close()


@pytest.mark.parametrize("kind", ["channel.cheer", "user.authorization.revoke"])
async def test_a_notification_for_a_subscription_sev_never_made_is_dropped(
    simulator: SimulatorProcess,
    relay: Relay,
    sev: SevProcess,
    browser: httpx.AsyncClient,
    kind: str,
) -> None:
    await _watching(browser, sev, simulator)
    streamer_id = simulator.account_id(STREAMER)
    if kind == "channel.cheer":
        forged = _forged_cheer(str(uuid.uuid4()), streamer_id, None)
    else:
        # Would end the viewer's grants and sessions: SEV's page logs them out.
        event = {
            "client_id": DEMO_CLIENT_ID,
            "user_id": simulator.account_id(VIEWER),
            "user_login": VIEWER,
            "user_name": VIEWER,
        }
        forged = notification(
            str(uuid.uuid4()), kind, "1", {"client_id": DEMO_CLIENT_ID}, event, None
        )
    relay.inject(forged)
    sent = simulator.trigger("channel.update", STREAMER)
    events = await _stored(browser, sev, sent)
    assert _message_id(forged) not in {e["id"] for e in events}
    assert "not one SEV holds there; dropped" in sev.logs()
    # Still logged in, still carried.
    later = simulator.trigger("stream.online", STREAMER)
    await _stored(browser, sev, later)


@pytest.mark.parametrize(
    "sent_at", [LONG_AGO, datetime.now(UTC) + timedelta(days=1)], ids=["2001", "tomorrow"]
)
async def test_a_notification_dated_outside_the_webhooks_ten_minutes_is_refused(
    simulator: SimulatorProcess,
    relay: Relay,
    sev: SevProcess,
    browser: httpx.AsyncClient,
    sent_at: datetime,
) -> None:
    await _watching(browser, sev, simulator)
    streamer_id = simulator.account_id(STREAMER)
    # A subscription SEV does hold: only the date is wrong.
    [held] = [
        s for s in simulator.socket_subscriptions(streamer_id) if s["type"] == "channel.update"
    ]
    event = {
        "broadcaster_user_id": streamer_id,
        "broadcaster_user_login": STREAMER,
        "broadcaster_user_name": STREAMER,
        "title": "Replayed",
        "language": "en",
        "category_id": "",
        "category_name": "",
        "content_classification_labels": [],
    }
    forged = notification(
        held["id"], "channel.update", held["version"], held["condition"], event, sent_at
    )
    relay.inject(forged)
    sent = simulator.trigger("channel.update", STREAMER)
    events = await _stored(browser, sev, sent)
    assert _message_id(forged) not in {e["id"] for e in events}
    assert "refused: timestamp" in sev.logs()


@pytest.mark.parametrize("keepalive", [1.7e308, 86_400])
async def test_an_absurd_keepalive_in_a_welcome_is_not_believed(
    simulator: SimulatorProcess,
    relay: Relay,
    sev: SevProcess,
    browser: httpx.AsyncClient,
    keepalive: float,
) -> None:
    def absurd_welcome(link: Link, frame: str) -> list[str]:
        message = json.loads(frame)
        if link is relay.links[0] and message["metadata"]["message_type"] == "session_welcome":
            message["payload"]["session"]["keepalive_timeout_seconds"] = keepalive
            return [json.dumps(message)]
        return [frame]

    relay.rewrite = absurd_welcome
    await _watching(browser, sev, simulator)
    # Twitch is cut off from SEV without a close: only the keepalive timer can tell.
    relay.links[0].cut_off = True
    await eventually(
        lambda: len(relay.links) >= 2,
        timeout=25,
        what="a new connection after the silence",
    )
    assert "no message for 12s" in sev.logs()


@pytest.mark.parametrize("second", ["newer URL", "same URL"])
async def test_a_second_reconnect_during_a_move_loses_and_repeats_nothing(
    simulator: SimulatorProcess,
    relay: Relay,
    sev: SevProcess,
    browser: httpx.AsyncClient,
    second: str,
) -> None:
    session = await _watching(browser, sev, simulator)
    streamer_id = simulator.account_id(STREAMER)
    kept = {s["id"] for s in simulator.socket_subscriptions(streamer_id)}
    creates = simulator.subscription_creates()
    if second == "same URL":

        def twice(link: Link, frame: str) -> list[str]:
            is_reconnect = json.loads(frame)["metadata"]["message_type"] == "session_reconnect"
            return [frame, frame] if is_reconnect else [frame]

        relay.rewrite = twice
    sent: list[str] = []
    stop = threading.Event()

    def keep_triggering() -> None:
        # Bounded: at most 150 events, one every 50 ms, across the moves.
        for _ in range(150):
            if stop.is_set():
                return
            sent.extend(simulator.trigger("channel.update", STREAMER))
            stop.wait(0.05)

    def moving_to(token: str) -> bool:
        return any(link.reconnect_id == token for link in relay.links)

    feeder = threading.Thread(target=keep_triggering)
    feeder.start()
    try:
        await asyncio.sleep(0.3)
        relay.hold_moves()
        [first] = simulator.control("websocket/reconnect", {"session_id": session})["data"]
        await eventually(lambda: moving_to(_token(first)), what="SEV moving to the first URL")
        if second == "newer URL":
            body = {"session_id": session}
            [newer] = simulator.control("websocket/reconnect", body)["data"]
            # Either SEV follows the newer URL, or (as it did) gives up on the old connection
            # and starts afresh: the assertions below tell which.
            await eventually(
                lambda: moving_to(_token(newer)) or len(relay.links) >= 3,
                what="SEV acting on the second reconnect",
            )
        else:
            await asyncio.sleep(1)
        relay.release_moves()
        await eventually(
            lambda: _sessions(simulator) not in ([], [session]),
            timeout=10,
            what="the move settled",
        )
        await asyncio.sleep(0.5)
    finally:
        stop.set()
        await asyncio.to_thread(feeder.join)
    await _stored(browser, sev, sent[-5:], timeout=15)
    ids = [e["id"] for e in await _events(browser, sev)]
    assert set(sent) <= set(ids), "a gap"
    assert len(ids) == len(set(ids)), "a duplicate"
    # The subscriptions carried over: SEV did not start afresh.
    assert {s["id"] for s in simulator.socket_subscriptions(streamer_id)} == kept
    assert simulator.subscription_creates() == creates
    assert len(_sessions(simulator)) == 1
    assert "Traceback" not in sev.logs()


def _token(moved: dict[str, Any]) -> str:
    return parse_qs(urlsplit(str(moved["reconnect_url"])).query)["reconnect_id"][0]
