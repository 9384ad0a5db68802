"""The simulated Twitch remembers across restarts (twitchsim/persistence.py), as Twitch does.

A simulator with a data dir is stopped and a new one started on the same dir and address, as a
restarted process would be: what an app holds (tokens, subscription ids, a message in flight)
must mean the same as before. Then a real `python -m twitchsim --data-dir` process, killed with
SIGKILL: what it saved before the crash is there after it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import os
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.support.polling import eventually
from tests.support.simworld import (
    FAST,
    REDIRECT,
    SECRET,
    STREAMER,
    VIEWER,
    Servers,
    World,
    expected_signature,
    make_world,
    restart,
)
from twitchsim import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, Simulator, SimulatorConfig
from twitchsim.persistence import STATE_FILE

pytestmark = pytest.mark.asyncio(loop_scope="module")


def _kept_in(data_dir: Path, **changes: Any) -> SimulatorConfig:
    return dataclasses.replace(FAST, data_dir=data_dir, **changes)


async def _validate(world: World, token: str) -> httpx.Response:
    return await world.http.get(
        f"{world.base}/oauth2/validate", headers={"Authorization": f"OAuth {token}"}
    )


async def _subscriptions(world: World, app_token: str) -> dict[str, Any]:
    response = await world.http.get(
        f"{world.base}/helix/eventsub/subscriptions", headers=world.headers(app_token)
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


def _streamer_id(world: World) -> str:
    account = world.sim.directory.by_login(STREAMER)
    assert account is not None
    return account.id


async def test_a_restarted_simulator_knows_its_tokens_grants_and_subscriptions(
    servers: Servers, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    config = _kept_in(tmp_path)
    async with make_world(servers, http, config) as world:
        streamer = await world.user_tokens(STREAMER, ["bits:read"])
        viewer = await world.user_tokens(VIEWER)
        app = await world.app_token()
        await world.subscribe("stream.online")
        await world.subscribe("channel.cheer")
        retired = await world.subscribe("user.update", user_id=_streamer_id(world))
        world.receiver.challenge = "wrong"
        failed = (await world.create(world.body("channel.update"), app)).json()["data"][0]
        await eventually(
            lambda: (
                world.sim.subscriptions[failed["id"]].status
                == "webhook_callback_verification_failed"
            )
        )
        world.receiver.challenge = "echo"
        control = f"{world.base}/control"
        assert (await http.post(f"{control}/limits", json={"max_total_cost": 42})).is_success
        revoke = {"status": "version_removed", "subscription_id": retired["id"]}
        assert (await http.post(f"{control}/revoke", json=revoke)).json()["revoked"]
        unused_code = parse_qs(
            urlsplit((await world.authorize(VIEWER, [])).headers["location"]).query
        )["code"][0]
        world.sim.tokens.expire(viewer["access_token"])
        before = await _subscriptions(world, app)
        expires_in = (await _validate(world, streamer["access_token"])).json()["expires_in"]

        await restart(servers, world, config)

        validated = await _validate(world, streamer["access_token"])
        assert validated.status_code == 200
        assert validated.json()["login"] == STREAMER
        assert validated.json()["scopes"] == ["bits:read"]
        # The expiry is a moment, not a fresh lifetime counted from the restart.
        assert expires_in - 30 < validated.json()["expires_in"] <= expires_in
        assert (await _validate(world, app)).status_code == 200
        assert (await _validate(world, viewer["access_token"])).status_code == 401
        assert (await _validate(world, "not-a-token")).status_code == 401

        after = await _subscriptions(world, app)
        assert after == before
        assert {s["status"] for s in after["data"]} == {
            "enabled",
            "version_removed",
            "webhook_callback_verification_failed",
        }
        assert after["max_total_cost"] == 42
        again = await world.create(world.body("user.update", user_id=_streamer_id(world)), app)
        assert again.status_code == 410

        refreshed = await world.token(
            grant_type="refresh_token", refresh_token=streamer["refresh_token"]
        )
        assert refreshed.status_code == 200
        assert (await _validate(world, refreshed.json()["access_token"])).status_code == 200
        redeemed = await world.token(grant_type="authorization_code", code=unused_code)
        assert redeemed.status_code == 200

        # The subscription's secret was kept: a new event reaches the app signed with it.
        [message_id] = await world.sim.trigger("channel.cheer", STREAMER)
        (delivery,) = await world.notifications(1)
        assert delivery.message_id == message_id
        assert delivery.headers["twitch-eventsub-message-signature"] == expected_signature(
            SECRET, delivery
        )
    state = tmp_path / STATE_FILE
    assert state.stat().st_mode & 0o777 == 0o600
    assert not [p for p in tmp_path.iterdir() if p != state]  # no temporary file left behind


async def test_a_public_demos_app_tokens_do_not_outlive_a_restart(
    servers: Servers, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    """An app token taken before a public demo's secret became its own must stop working: the
    simulator keeps no app token across a restart there (its app, SEV, asks again on a 401)."""
    config = _kept_in(tmp_path, public=True)
    async with make_world(servers, http, config) as world:
        viewer = await world.user_tokens(VIEWER)
        stranger = await world.app_token()
        assert (await _validate(world, stranger)).status_code == 200

        await restart(servers, world, config)

        assert (await _validate(world, stranger)).status_code == 401
        assert (await _validate(world, viewer["access_token"])).status_code == 200
        assert (await _validate(world, await world.app_token())).status_code == 200


async def test_a_message_in_flight_is_sent_after_a_restart_with_its_id_and_retry_count(
    servers: Servers, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    # The first run would retry in 30 s; the restarted one goes on with its own short delays.
    async with make_world(servers, http, _kept_in(tmp_path, retry_delays_s=(30,))) as world:
        await world.subscribe("stream.online")
        world.receiver.notification_status = 503
        [message_id] = await world.sim.trigger("stream.online", STREAMER)
        await eventually(
            lambda: any(a.message_id == message_id for a in world.sim.deliveries.attempts),
            what="the first attempt",
        )
        world.receiver.notification_status = 204

        await restart(servers, world, _kept_in(tmp_path))

        received = await world.notifications(2)
        assert [d.message_id for d in received] == [message_id, message_id]
        assert [d.retry for d in received] == [0, 1]
        assert received[1].body == received[0].body
        assert received[1].headers["twitch-eventsub-message-signature"] == expected_signature(
            SECRET, received[1]
        )
        await eventually(lambda: world.sim.deliveries.pending() == 0, what="nothing left to send")
        assert [s.status for s in world.sim.subscriptions.values()] == ["enabled"]


async def test_a_demo_stream_plays_on_after_a_restart_instead_of_going_live_again(
    servers: Servers, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    # A moment every 50 ms on average: a few seconds of a session that lasts hours.
    config = _kept_in(tmp_path, events_per_minute=1200, seed=3)
    async with make_world(servers, http, config) as world:
        await world.user_tokens(STREAMER, ["moderator:read:followers"])
        for type_ in ("stream.online", "stream.offline", "channel.follow"):
            await world.subscribe(type_)
        first = await world.notifications(5)
        assert first[0].json["subscription"]["type"] == "stream.online"

        await restart(servers, world, config)

        await world.notifications(len(world.receiver.of_type("notification")) + 5)
        types = [d.json["subscription"]["type"] for d in world.receiver.of_type("notification")]
        assert types.count("stream.online") == 1
        assert "stream.offline" not in types
        assert types.count("channel.follow") >= 9


async def test_a_subscription_kept_for_another_callback_gets_no_delivery(
    servers: Servers, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    async with make_world(servers, http, _kept_in(tmp_path)) as world:
        await world.subscribe("stream.online")
        # Restarted as a demo whose own webhook is elsewhere (SEV moved to another port).
        moved = _kept_in(tmp_path, callbacks=("http://127.0.0.1:9/webhooks/eventsub",))
        await restart(servers, world, moved)
        [message_id] = await world.sim.trigger("stream.online", STREAMER)
        await eventually(
            lambda: any(
                a.message_id == message_id and a.error == "callback not allowed"
                for a in world.sim.deliveries.attempts
            ),
            what="the refused attempt",
        )
        assert world.receiver.of_type("notification") == []


def _valid_state_with_a_wrong_type(data_dir: Path) -> bytes:
    sim = Simulator(_kept_in(data_dir))
    sim.tokens.issue_app_token(DEMO_CLIENT_ID)
    state = json.loads(json.dumps(sim._snapshot()))
    state["tokens"]["access"][0]["expires_at"] = "tomorrow"
    return json.dumps(state).encode()


@pytest.mark.parametrize(
    "content",
    [
        lambda _: b'{"version": 1, "tokens": {"codes": [',
        lambda _: b"\xff\xfe not text",
        lambda _: b'{"version": 99}',
        lambda _: b"[]",
        _valid_state_with_a_wrong_type,
    ],
    ids=["truncated", "not-utf8", "other-version", "not-an-object", "wrong-type"],
)
async def test_an_unreadable_state_file_is_set_aside_and_the_simulator_starts_empty(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, content: Callable[[Path], bytes]
) -> None:
    state = tmp_path / STATE_FILE
    bad = content(tmp_path)
    state.write_bytes(bad)
    with caplog.at_level(logging.INFO, logger="twitchsim"):
        sim = Simulator(_kept_in(tmp_path))
    lines = [r for r in caplog.records if r.name.startswith("twitchsim")]
    assert len(lines) == 1, caplog.text
    assert lines[0].levelno == logging.WARNING
    assert str(state) in lines[0].getMessage()
    assert "starting empty" in lines[0].getMessage()
    assert (tmp_path / f"{STATE_FILE}.bad").read_bytes() == bad
    assert not state.exists()
    assert len(sim.subscriptions) == 0 and sim.tokens.access == {} and sim.tokens.grants == {}

    # It goes on keeping its state, in a new file.
    await sim.start()
    token = sim.tokens.issue_app_token(DEMO_CLIENT_ID)
    await sim.stop()
    saved = json.loads(state.read_text())
    assert [t["token"] for t in saved["tokens"]["access"]] == [token.token]
    assert token.token not in caplog.text


# --- a real process: `python -m twitchsim --data-dir` -------------------------------------------


@asynccontextmanager
async def _standalone(
    port: int, data_dir: Path, log: Path
) -> AsyncIterator[subprocess.Popen[bytes]]:
    with log.open("ab") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "twitchsim", "--port", str(port), "--data-dir", str(data_dir)],
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:

        async def up() -> bool:
            assert process.poll() is None, log.read_text()
            try:
                async with httpx.AsyncClient(trust_env=False, timeout=2) as client:
                    answer = await client.get(f"http://127.0.0.1:{port}/control/accounts")
            except httpx.TransportError:
                return False
            return answer.status_code == 200

        await eventually(up, timeout=15, interval=0.1, what="the simulated Twitch up")
        yield process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
        await asyncio.to_thread(process.wait, 10)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_a_crash_keeps_what_the_standalone_simulator_saved(
    http: httpx.AsyncClient, tmp_path: Path
) -> None:
    port, data_dir, log = _free_port(), tmp_path / "state", tmp_path / "simulator.log"
    base = f"http://127.0.0.1:{port}"
    params = {
        "client_id": DEMO_CLIENT_ID,
        "redirect_uri": REDIRECT,
        "response_type": "code",
        "scope": "bits:read",
        "login": STREAMER,
        "decision": "authorize",
    }
    async with _standalone(port, data_dir, log) as process:
        location = (await http.get(f"{base}/oauth2/authorize", params=params)).headers["location"]
        code = parse_qs(urlsplit(location).query)["code"][0]
        form = {
            "client_id": DEMO_CLIENT_ID,
            "client_secret": DEMO_CLIENT_SECRET,
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT,
        }
        token = (await http.post(f"{base}/oauth2/token", data=form)).json()["access_token"]
        state = data_dir / STATE_FILE
        # Saved within moments of the login, without waiting for a clean stop.
        await eventually(
            lambda: state.exists() and token in state.read_text(), what="the token saved"
        )
        assert state.stat().st_mode & 0o777 == 0o600
        os.killpg(process.pid, signal.SIGKILL)

    async with _standalone(port, data_dir, log):
        validated = await http.get(
            f"{base}/oauth2/validate", headers={"Authorization": f"OAuth {token}"}
        )
    assert validated.status_code == 200, validated.text
    assert validated.json()["login"] == STREAMER
    assert f"state kept in {data_dir / STATE_FILE}" in log.read_text()
    assert token not in log.read_text()
