"""The EventSub WebSocket transport on real processes: SEV (uvicorn) connects out to the
simulated Twitch's WebSocket, subscribes with users' tokens, and stores what arrives; the
simulated Twitch reconnects, falls silent, closes with each of Twitch's codes and revokes."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from sev.eventsub.websocket import CLOSES
from sev.store.records import RefusalReason
from sev.streamers import HELD_BACK, REMOVED
from tests.support.login import connect_channel, log_in, set_favourite
from tests.support.polling import eventually
from tests.support.processes import DemoProcess, SevProcess, SimulatorProcess
from tests.support.services import MongoServer

PUBLIC_SET = {"stream.online", "stream.offline", "channel.update", "channel.raid", "user.update"}
STREAMER = "pixelpaladin"
VIEWER = "viewer_vic"
# Twitch's keepalive is 10 s at least; the simulated Twitch lets tests ask for 2.
KEEPALIVE_S = 2


@pytest.fixture
def simulator(tmp_path: Any, processes: list[Any]) -> SimulatorProcess:
    simulator = SimulatorProcess(
        tmp_path, extra=["--ws-min-keepalive", "1", "--ws-reconnect-grace", "3"]
    )
    simulator.start()
    processes.append(simulator)
    return simulator


@pytest.fixture
def sev(simulator: SimulatorProcess, make_sev: Callable[..., SevProcess]) -> SevProcess:
    return make_sev(
        simulator,
        SEV_EVENTSUB_TRANSPORT="websocket",
        TWITCH_EVENTSUB_WS_URL=f"ws://127.0.0.1:{simulator.port}/ws"
        f"?keepalive_timeout_seconds={KEEPALIVE_S}",
    )


@pytest.fixture
async def browser() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=20) as client:
        yield client


def _sessions(simulator: SimulatorProcess) -> list[dict[str, Any]]:
    return list(simulator.control("websocket")["data"])


def _carrying(simulator: SimulatorProcess, user_id: str, types: set[str]) -> str | None:
    """The session id whose enabled subscriptions cover `types` for this channel, if any."""
    subscriptions = simulator.socket_subscriptions(user_id)
    sessions = {str(s["transport"]["session_id"]) for s in subscriptions}
    if {s["type"] for s in subscriptions} >= types and len(sessions) == 1:
        return sessions.pop()
    return None


async def _events(browser: httpx.AsyncClient, sev: SevProcess, login: str) -> list[Any]:
    response = await browser.get(f"{sev.url}/api/streamers/{login}/events")
    assert response.status_code == 200, response.text
    return list(response.json()["events"])


async def _streamer(browser: httpx.AsyncClient, sev: SevProcess, login: str) -> Any:
    response = await browser.get(f"{sev.url}/api/streamers/{login}/events")
    assert response.status_code == 200, response.text
    return response.json()["streamer"]


async def _watching(
    browser: httpx.AsyncClient, sev: SevProcess, simulator: SimulatorProcess
) -> str:
    """A viewer logs in and favours STREAMER; returns the session carrying its public set."""
    await log_in(browser, sev.url, VIEWER)
    assert (await set_favourite(browser, sev.url, STREAMER)).status_code == 303
    streamer_id = simulator.account_id(STREAMER)
    session: str = await eventually(
        lambda: _carrying(simulator, streamer_id, PUBLIC_SET),
        timeout=15,
        what="the public set subscribed over the viewer's WebSocket",
    )
    return session


async def _stored(
    browser: httpx.AsyncClient, sev: SevProcess, ids: list[str], timeout: float = 10
) -> list[Any]:
    async def check() -> list[Any] | None:
        events = await _events(browser, sev, STREAMER)
        seen = [e["id"] for e in events]
        return events if set(ids) <= set(seen) else None

    events: list[Any] = await eventually(check, timeout=timeout, what=f"events {ids} stored")
    return events


async def test_welcome_subscribe_notification_stored_and_shown_with_a_viewers_login(
    simulator: SimulatorProcess, sev: SevProcess, browser: httpx.AsyncClient
) -> None:
    session = await _watching(browser, sev, simulator)
    viewer_id = simulator.account_id(VIEWER)
    [open_session] = _sessions(simulator)
    assert open_session["id"] == session
    # The viewer's own token made them: a WebSocket subscription needs a user token.
    assert open_session["user_ids"] == [viewer_id]
    assert "EventSub transport: websocket" in sev.logs()
    sent = simulator.trigger("channel.update", STREAMER, title="Speedrun at 8")
    events = await _stored(browser, sev, sent)
    stored = next(e for e in events if e["id"] == sent[0])
    assert stored["type"] == "channel.update" and "Speedrun at 8" in stored["summary"]
    streamer = await _streamer(browser, sev, STREAMER)
    states = {k["type"]: k["state"] for k in streamer["kinds"] if not k["connected_only"]}
    assert set(states.values()) == {"on"}


async def test_a_connected_streamer_carries_their_own_channel_with_the_connected_types(
    simulator: SimulatorProcess, sev: SevProcess, browser: httpx.AsyncClient
) -> None:
    await log_in(browser, sev.url, STREAMER)
    answer = await connect_channel(browser, sev.url, STREAMER)
    assert answer.status_code == 303
    assert (await set_favourite(browser, sev.url, STREAMER)).status_code == 303
    streamer_id = simulator.account_id(STREAMER)
    await eventually(
        lambda: _carrying(simulator, streamer_id, PUBLIC_SET | {"channel.follow", "channel.cheer"}),
        timeout=15,
        what="the connected set subscribed over the streamer's own WebSocket",
    )
    [session] = _sessions(simulator)
    assert session["user_ids"] == [streamer_id]
    sent = simulator.trigger("channel.follow", STREAMER)
    await _stored(browser, sev, sent)


async def test_missed_keepalives_mean_a_new_connection_and_new_subscriptions_nothing_lost(
    simulator: SimulatorProcess, sev: SevProcess, browser: httpx.AsyncClient
) -> None:
    first = await _watching(browser, sev, simulator)
    before = simulator.trigger("channel.update", STREAMER, count=3)
    await _stored(browser, sev, before)
    simulator.control("websocket/silence", {"session_id": first, "seconds": 30})
    streamer_id = simulator.account_id(STREAMER)
    second = await eventually(
        lambda: (s := _carrying(simulator, streamer_id, PUBLIC_SET)) != first and s,
        timeout=15,
        what="a new session after the keepalives stopped",
    )
    assert "no message for" in sev.logs()
    after = simulator.trigger("channel.update", STREAMER, count=3)
    events = await _stored(browser, sev, before + after)
    ids = [e["id"] for e in events]
    assert len(ids) == len(set(ids))
    assert second != first


async def test_session_reconnect_moves_without_a_gap_or_a_duplicate(
    simulator: SimulatorProcess, sev: SevProcess, browser: httpx.AsyncClient
) -> None:
    await _watching(browser, sev, simulator)
    streamer_id = simulator.account_id(STREAMER)
    kept = {s["id"] for s in simulator.socket_subscriptions(streamer_id)}
    creates = simulator.subscription_creates()
    sent: list[str] = []
    stop = threading.Event()

    def keep_triggering() -> None:
        # Bounded: at most 40 events, one every 50 ms, across the handover.
        for _ in range(40):
            if stop.is_set():
                return
            sent.extend(simulator.trigger("channel.update", STREAMER))
            stop.wait(0.05)

    feeder = threading.Thread(target=keep_triggering)
    feeder.start()
    try:
        await asyncio.sleep(0.3)
        [moved] = simulator.control("websocket/reconnect", {})["data"]
        await eventually(
            lambda: [s["id"] for s in _sessions(simulator)] not in ([], [moved["session_id"]]),
            timeout=10,
            what="the move to the reconnect URL",
        )
    finally:
        await asyncio.to_thread(feeder.join)
    events = await _stored(browser, sev, sent[-10:], timeout=15)
    response = await browser.get(f"{sev.url}/api/streamers/{STREAMER}/events?after=0")
    assert response.status_code == 200
    ids = [e["id"] for e in response.json()["events"]]
    assert set(sent) <= set(ids) and len(ids) == len(set(ids)), "a gap or a duplicate"
    assert events
    # The subscriptions carried over: SEV asked for none anew.
    assert {s["id"] for s in simulator.socket_subscriptions(streamer_id)} == kept
    assert simulator.subscription_creates() == creates
    assert len(_sessions(simulator)) == 1


@pytest.mark.parametrize("code", [4000, 4001, 4002, 4004, 4005, 4006, 4007])
async def test_each_close_code_is_read_and_the_subscriptions_made_again(
    simulator: SimulatorProcess, sev: SevProcess, browser: httpx.AsyncClient, code: int
) -> None:
    first = await _watching(browser, sev, simulator)
    simulator.control("websocket/close", {"session_id": first, "code": code})
    streamer_id = simulator.account_id(STREAMER)
    await eventually(
        lambda: (s := _carrying(simulator, streamer_id, PUBLIC_SET)) != first and s,
        timeout=15,
        what=f"subscriptions made again after close {code}",
    )
    assert CLOSES[code][0] in sev.logs()
    sent = simulator.trigger("stream.online", STREAMER)
    await _stored(browser, sev, sent)


async def test_a_connection_closed_as_unused_is_not_hammered(
    simulator: SimulatorProcess, sev: SevProcess, browser: httpx.AsyncClient
) -> None:
    first = await _watching(browser, sev, simulator)
    simulator.control("websocket/close", {"session_id": first, "code": 4003})
    await eventually(lambda: CLOSES[4003][0] in sev.logs(), what="the 4003 logged")
    # Connecting again at once would only be closed again: SEV waits a while first.
    await asyncio.sleep(2)
    assert _sessions(simulator) == []
    streamer_id = simulator.account_id(STREAMER)
    await eventually(
        lambda: _carrying(simulator, streamer_id, PUBLIC_SET),
        timeout=20,
        what="a new connection after the wait",
    )


async def test_a_revocation_over_the_socket_is_acted_on_once(
    simulator: SimulatorProcess, sev: SevProcess, browser: httpx.AsyncClient
) -> None:
    await _watching(browser, sev, simulator)
    revoked = simulator.control("revoke", {"status": "user_removed", "login": STREAMER})
    assert revoked["revoked"]
    streamer = await eventually(
        lambda: _removed(browser, sev), timeout=10, what="the page saying the account is gone"
    )
    assert REMOVED in streamer["notices"]
    streamer_id = simulator.account_id(STREAMER)
    # SEV stops asking: nothing enabled for the channel, and no new connection for it.
    await eventually(lambda: not simulator.socket_subscriptions(streamer_id), timeout=10)


async def _removed(browser: httpx.AsyncClient, sev: SevProcess) -> Any:
    streamer = await _streamer(browser, sev, STREAMER)
    return streamer if REMOVED in streamer["notices"] else None


@pytest.mark.parametrize(
    ("limit", "reason", "words"),
    [
        ("ws_max_total_cost", RefusalReason.SOCKET_COST, "a total cost of 10"),
        ("ws_max_per_connection", RefusalReason.SOCKET_LIMIT, "300 subscriptions per connection"),
    ],
)
async def test_twitchs_websocket_limits_are_a_sentence_on_the_page(
    simulator: SimulatorProcess,
    sev: SevProcess,
    browser: httpx.AsyncClient,
    limit: str,
    reason: RefusalReason,
    words: str,
) -> None:
    simulator.control("limits", {limit: 2})
    await log_in(browser, sev.url, VIEWER)
    assert (await set_favourite(browser, sev.url, STREAMER)).status_code == 303

    async def held() -> Any:
        streamer = await _streamer(browser, sev, STREAMER)
        return streamer if HELD_BACK[reason] in streamer["notices"] else None

    streamer = await eventually(held, timeout=15, what=f"{reason} said on the page")
    states = [k["state"] for k in streamer["kinds"] if not k["connected_only"]]
    assert states.count("on") == 2 and "held" in states
    page = await browser.get(f"{sev.url}/streamers/{STREAMER}")
    assert words in page.text and "Traceback" not in page.text


async def test_an_expired_token_is_renewed_before_subscribing_again(
    tmp_path: Any,
    processes: list[Any],
    make_sev: Callable[..., SevProcess],
    browser: httpx.AsyncClient,
) -> None:
    # Tokens that live 4 s: by the time the connection drops, the viewer's has expired.
    simulator = SimulatorProcess(tmp_path, token_lifetime=4, extra=["--ws-min-keepalive", "1"])
    simulator.start()
    processes.append(simulator)
    sev = make_sev(
        simulator,
        SEV_EVENTSUB_TRANSPORT="websocket",
        TWITCH_EVENTSUB_WS_URL=f"ws://127.0.0.1:{simulator.port}/ws"
        f"?keepalive_timeout_seconds={KEEPALIVE_S}",
    )
    first = await _watching(browser, sev, simulator)
    await asyncio.sleep(5)
    simulator.control("websocket/close", {"session_id": first, "code": 4000})
    streamer_id = simulator.account_id(STREAMER)
    await eventually(
        lambda: (s := _carrying(simulator, streamer_id, PUBLIC_SET)) != first and s,
        timeout=20,
        what="subscriptions made again with a renewed token",
    )
    assert "renewing it" in sev.logs() and "refreshed the login token" in sev.logs()


async def test_a_channel_nobody_logged_in_favours_says_why_it_is_silent(
    simulator: SimulatorProcess, sev: SevProcess, browser: httpx.AsyncClient
) -> None:
    await _watching(browser, sev, simulator)
    logout = await browser.post(
        f"{sev.url}/logout",
        data={"csrf_token": await _csrf(browser, sev)},
        follow_redirects=False,
    )
    assert logout.status_code == 303
    streamer_id = simulator.account_id(STREAMER)
    await eventually(lambda: not simulator.socket_subscriptions(streamer_id), timeout=15)
    async with httpx.AsyncClient(timeout=20) as stranger:
        await log_in(stranger, sev.url, "lurker_lou")

        async def silent() -> Any:
            streamer = await _streamer(stranger, sev, STREAMER)
            return (
                streamer
                if HELD_BACK[RefusalReason.SOCKET_NO_LOGIN] in streamer["notices"]
                else None
            )

        await eventually(silent, timeout=15, what="the page saying nobody can carry it")


async def _csrf(browser: httpx.AsyncClient, sev: SevProcess) -> str:
    from tests.support.login import csrf_token

    return await csrf_token(browser, sev.url)


async def test_a_store_outage_holds_socket_messages_and_stores_each_once_when_back(
    simulator: SimulatorProcess,
    make_sev: Callable[..., SevProcess],
    mongo_server: MongoServer,
    browser: httpx.AsyncClient,
) -> None:
    # Twitch does not resend over a WebSocket (there is no 503 to answer): SEV holds what
    # arrives while its store is away, in order, and stores it when the store is back.
    sev = make_sev(
        simulator,
        SEV_EVENTSUB_TRANSPORT="websocket",
        TWITCH_EVENTSUB_WS_URL=f"ws://127.0.0.1:{simulator.port}/ws?keepalive_timeout_seconds=10",
        MONGODB_URI=f"{mongo_server.uri}sev_socket_{uuid.uuid4().hex[:12]}",
    )
    await _watching(browser, sev, simulator)
    before = simulator.trigger("channel.update", STREAMER, count=2)
    await _stored(browser, sev, before)
    await asyncio.to_thread(mongo_server.stop)
    try:
        during = simulator.trigger("channel.update", STREAMER, count=5)
        await eventually(lambda: "holding EventSub messages" in sev.logs(), what="messages held")
    finally:
        await asyncio.to_thread(mongo_server.start)
    after = simulator.trigger("channel.update", STREAMER, count=2)
    await _stored(browser, sev, before + during + after, timeout=30)
    response = await browser.get(f"{sev.url}/api/streamers/{STREAMER}/events?after=0")
    events = response.json()["events"]
    ids = [e["id"] for e in events]
    assert sorted(ids) == sorted(before + during + after)
    # In the order they came: seq follows arrival.
    by_seq = [e["id"] for e in sorted(events, key=lambda e: e["seq"])]
    assert by_seq == before + during + after


async def test_the_demo_runs_over_the_websocket_transport_too(tmp_path: Any) -> None:
    # `sev demo --transport websocket`: the mounted simulated Twitch's /_twitch/ws, as a laptop
    # against real Twitch would use Twitch's.
    demo = DemoProcess(tmp_path, env={"SEV_EVENTSUB_TRANSPORT": "websocket"})
    demo.start()
    try:
        async with httpx.AsyncClient(timeout=20) as client:
            await log_in(client, demo.url, VIEWER)
            assert (await set_favourite(client, demo.url, STREAMER)).status_code == 303
            streamer_id = demo.twitch.account_id(STREAMER)

            def carried() -> bool:
                subscriptions = [
                    s
                    for s in demo.twitch.subscriptions()
                    if streamer_id in s["condition"].values() and s["status"] == "enabled"
                ]
                methods = {s["transport"]["method"] for s in subscriptions}
                return {s["type"] for s in subscriptions} >= PUBLIC_SET and methods == {"websocket"}

            await eventually(carried, timeout=20, what="the demo's channel carried over /ws")
            sent = demo.twitch.trigger("channel.update", STREAMER)

            async def stored() -> bool:
                response = await client.get(f"{demo.url}/api/streamers/{STREAMER}/events")
                return sent[0] in [e["id"] for e in response.json()["events"]]

            await eventually(stored, timeout=10, what="the event stored")
        assert "EventSub transport: websocket" in demo.logs()
    finally:
        demo.stop()


async def test_two_processes_hold_one_connection_and_the_survivor_takes_over(
    simulator: SimulatorProcess,
    make_sev: Callable[..., SevProcess],
    mongo_server: MongoServer,
    browser: httpx.AsyncClient,
) -> None:
    env = {
        "SEV_EVENTSUB_TRANSPORT": "websocket",
        "TWITCH_EVENTSUB_WS_URL": f"ws://127.0.0.1:{simulator.port}/ws"
        f"?keepalive_timeout_seconds={KEEPALIVE_S}",
        "MONGODB_URI": f"{mongo_server.uri}sev_socket_{uuid.uuid4().hex[:12]}",
        "SEV_EVENTSUB_LEASE_S": "3",
    }
    first = make_sev(simulator, **env)
    second = make_sev(simulator, **env)
    await _watching(browser, first, simulator)
    # Both plan every second: still one connection (one lease holder), never one each.
    await asyncio.sleep(3)
    [session] = _sessions(simulator)
    holder, survivor = (first, second) if "connected (session" in first.logs() else (second, first)
    assert "connected (session" not in survivor.logs()
    holder.kill()
    streamer_id = simulator.account_id(STREAMER)
    await eventually(
        lambda: (s := _carrying(simulator, streamer_id, PUBLIC_SET)) != session["id"] and s,
        timeout=15,
        what="the surviving process carrying the channel",
    )
    assert "connected (session" in survivor.logs()
    sent = simulator.trigger("channel.update", STREAMER)
    await _stored(browser, survivor, sent)


async def test_an_authorization_revoked_over_the_socket_withdraws_that_grant_for_good(
    simulator: SimulatorProcess, sev: SevProcess, browser: httpx.AsyncClient
) -> None:
    await log_in(browser, sev.url, STREAMER)
    assert (await connect_channel(browser, sev.url, STREAMER)).status_code == 303
    assert (await set_favourite(browser, sev.url, STREAMER)).status_code == 303
    streamer_id = simulator.account_id(STREAMER)
    await eventually(
        lambda: _carrying(simulator, streamer_id, PUBLIC_SET | {"channel.follow"}),
        timeout=15,
        what="the connected set over the streamer's WebSocket",
    )
    revoked = simulator.control(
        "revoke",
        {"status": "authorization_revoked", "type": "channel.follow", "login": STREAMER},
    )
    assert revoked["revoked"]

    async def follows_off() -> Any:
        streamer = await _streamer(browser, sev, STREAMER)
        kinds = {k["type"]: k["state"] for k in streamer["kinds"]}
        return streamer if kinds["channel.follow"] == "off" else None

    await eventually(follows_off, timeout=10, what="follows switched off on the page")
    # Not asked for again: the streamer withdrew it (on Twitch's word).
    await asyncio.sleep(3)
    types = {s["type"] for s in simulator.socket_subscriptions(streamer_id)}
    assert "channel.follow" not in types and types >= PUBLIC_SET
