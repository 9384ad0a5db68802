"""GET /api/streamers/{login}/events: the watch ack's shape, over the in-process app."""

from __future__ import annotations

import ast
from datetime import UTC, datetime
from pathlib import Path

import pydantic
import pytest

import sev.twitch
from sev.events import Event
from sev.eventsub.subscriptions import HELD_REVOCATIONS, RETRY_AFTER
from sev.eventsub.websocket.transport import SOCKET_REFUSALS
from sev.store import Broadcaster, Refusal, SubscriptionRecord, User
from sev.store.records import RefusalReason
from sev.streamers import HELD_BACK, KIND_STATES, REMOVED, kind_state, login_from_input
from tests.support.apps import AppHandle
from tests.support.factories import make_event, session_cookie
from tests.support.settings import SESSION_SECRET


@pytest.fixture
async def app(app: AppHandle) -> AppHandle:
    """The shared in-process app, with a logged-in viewer and a connected streamer."""
    await app.store.save_user(User(id="9", login="viewer", display_name="Viewer"))
    await app.store.save_broadcaster(
        Broadcaster(
            id="1337",
            login="cooler_user",
            display_name="Cooler_User",
            granted_scopes=["bits:read"],
        )
    )
    app.client.cookies.set("sev_session", session_cookie(SESSION_SECRET, user_id="9"))
    return app


async def test_events_api_returns_the_newest_ten_newest_first(app: AppHandle) -> None:
    await app.store.insert_events([make_event(message_id=f"m{i}") for i in range(15)])
    body = (await app.client.get("/api/streamers/cooler_user/events")).json()
    assert [e["seq"] for e in body["events"]] == list(range(15, 5, -1))
    assert body["streamer"]["login"] == "cooler_user"
    assert "gap" not in body
    assert set(body["events"][0]) == set(Event.model_fields)


async def test_events_api_returns_every_event_after_a_seq(app: AppHandle) -> None:
    await app.store.insert_events([make_event() for _ in range(30)])
    body = (await app.client.get("/api/streamers/cooler_user/events?after=12")).json()
    assert [e["seq"] for e in body["events"]] == list(range(30, 12, -1))


async def test_events_api_pages_back_through_older_events(app: AppHandle) -> None:
    await app.store.insert_events([make_event() for _ in range(25)])
    body = (await app.client.get("/api/streamers/cooler_user/events?before=16")).json()
    assert [e["seq"] for e in body["events"]] == list(range(15, 5, -1))
    assert body["streamer"]["login"] == "cooler_user"
    body = (await app.client.get("/api/streamers/cooler_user/events?before=6&limit=3")).json()
    assert [e["seq"] for e in body["events"]] == [5, 4, 3]
    body = (await app.client.get("/api/streamers/cooler_user/events?before=1")).json()
    assert body["events"] == []


async def test_events_api_says_gap_when_more_than_100_were_missed(app: AppHandle) -> None:
    await app.store.insert_events([make_event() for _ in range(120)])
    body = (await app.client.get("/api/streamers/cooler_user/events?after=5")).json()
    assert body["gap"] is True
    assert [e["seq"] for e in body["events"]] == list(range(120, 110, -1))


async def test_events_api_describes_what_the_streamer_shares(app: AppHandle) -> None:
    await app.store.save_subscription(
        SubscriptionRecord(
            id="s",
            broadcaster_id="1337",
            type="channel.cheer",
            version="1",
            condition={"broadcaster_user_id": "1337"},
            status="enabled",
        )
    )
    streamer = (await app.client.get("/api/streamers/cooler_user/events")).json()["streamer"]
    assert streamer["connected"] is True
    kinds = {k["type"]: k for k in streamer["kinds"]}
    assert kinds["channel.cheer"]["available"] and kinds["channel.cheer"]["status"] == "enabled"
    assert kinds["channel.follow"]["available"] is False
    assert kinds["stream.online"]["connected_only"] is False
    assert kinds["channel.cheer"]["state"] == "on"
    assert kinds["channel.follow"]["state"] == "off"
    assert kinds["stream.online"]["state"] == "pending"
    assert {k["state"] for k in streamer["kinds"]} <= set(KIND_STATES)


@pytest.mark.parametrize(
    ("available", "held", "status", "state"),
    [
        (False, None, None, "off"),
        (False, REMOVED, "enabled", "off"),
        (True, REMOVED, None, "held"),
        (True, "Twitch paused these events", "authorization_revoked", "held"),
        (True, None, "enabled", "on"),
        (True, None, None, "pending"),
        (True, None, "webhook_callback_verification_pending", "pending"),
        (True, None, "authorization_revoked", "stopped"),
        (True, None, "notification_failures_exceeded", "stopped"),
    ],
)
def test_kind_state_says_whether_a_kind_is_coming(
    available: bool, held: str | None, status: str | None, state: str
) -> None:
    assert kind_state(available=available, held=held, status=status) == state
    assert state in KIND_STATES


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/api/streamers/nobody_here/events", 404),
        ("/api/streamers/cooler_user/events?limit=0", 422),
        ("/api/streamers/cooler_user/events?limit=101", 422),
        ("/api/streamers/cooler_user/events?after=-1", 422),
        ("/api/streamers/cooler_user/events?after=x", 422),
        # Past what a 64-bit integer holds: refused, not a 500 from the store.
        ("/api/streamers/cooler_user/events?after=9223372036854775808", 422),
        ("/api/streamers/cooler_user/events?after=true", 422),
        # `before` is checked as `after` is: an integer from 0 to 2**63 - 1.
        ("/api/streamers/cooler_user/events?before=-1", 422),
        ("/api/streamers/cooler_user/events?before=x", 422),
        ("/api/streamers/cooler_user/events?before=true", 422),
        ("/api/streamers/cooler_user/events?before=1.5", 422),
        ("/api/streamers/cooler_user/events?before=9223372036854775808", 422),
        ("/api/streamers/cooler_user/events?before=5&after=1", 422),
        ("/api/streamers/cooler_user/events?before=9223372036854775807", 200),
        ("/api/streamers/cooler_user/events?before=0", 200),
    ],
)
async def test_events_api_refuses_bad_requests(app: AppHandle, path: str, status: int) -> None:
    assert (await app.client.get(path)).status_code == status


async def test_events_api_needs_a_login(app: AppHandle) -> None:
    app.client.cookies.clear()
    response = await app.client.get("/api/streamers/cooler_user/events")
    assert response.status_code == 401


async def test_events_api_ignores_a_forged_session(app: AppHandle) -> None:
    app.client.cookies.set("sev_session", session_cookie("not-the-secret-" * 3, user_id="9"))
    response = await app.client.get("/api/streamers/cooler_user/events")
    assert response.status_code == 401


@pytest.mark.parametrize(
    ("pasted", "login"),
    [
        ("pixelpaladin", "pixelpaladin"),
        ("@PixelPaladin", "pixelpaladin"),
        ("  twitch.tv/pixelpaladin \n", "pixelpaladin"),
        ("https://www.twitch.tv/pixelpaladin", "pixelpaladin"),
        ("http://twitch.tv/PixelPaladin/", "pixelpaladin"),
        ("https://m.twitch.tv/pixel_paladin/videos?filter=all#top", "pixel_paladin"),
        ("www.twitch.tv/pixelpaladin?sr=a", "pixelpaladin"),
        ("", None),
        ("   ", None),
        ("@", None),
        ("@@pixelpaladin", None),
        ("https://www.twitch.tv/", None),
        ("https://evil.example/pixelpaladin", None),
        ("https://www.twitch.tv.evil.example/pixelpaladin", None),
        ("ftp://twitch.tv/pixelpaladin", None),
        ("user@twitch.tv", None),
        ("twitch.tv/<b>", None),
        ("pixel paladin", None),
        ("x" * 26, None),
    ],
)
def test_login_from_input_takes_what_people_paste(pasted: str, login: str | None) -> None:
    assert login_from_input(pasted) == login


def _twitch_refusal_reasons() -> set[str]:
    """Every reason sev/twitch.py gives a SubscriptionRefused: the string constants of its third
    argument, or of what was assigned to the name passed there in the same function."""
    tree = ast.parse(Path(sev.twitch.__file__).read_text())
    reasons: set[str] = set()
    for function in ast.walk(tree):
        if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        assigned: dict[str, list[ast.expr]] = {}
        for node in ast.walk(function):
            if isinstance(node, ast.Assign):
                for target in node.targets:
                    if isinstance(target, ast.Name):
                        assigned.setdefault(target.id, []).append(node.value)
        for node in ast.walk(function):
            if not (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == "SubscriptionRefused"
            ):
                continue
            reason = node.args[2]
            values = assigned[reason.id] if isinstance(reason, ast.Name) else [reason]
            reasons |= {
                c.value
                for value in values
                for c in ast.walk(value)
                if isinstance(c, ast.Constant) and isinstance(c.value, str)
            }
    return reasons


def test_refusal_reasons_cover_every_reason_the_code_records() -> None:
    # The values are what the store keeps: renaming one would orphan stored refusals.
    assert {r.value for r in RefusalReason} == {
        "limit",
        "cost",
        "forbidden",
        "version_removed",
        "beta_maintenance",
        "moderator_removed",
        "socket_no_login",
        "socket_cost",
        "socket_limit",
    }
    # What Twitch's client refuses with becomes a reason as it is (webhooks) or through the
    # WebSocket transport's table; a revocation that is held back keeps its status as reason.
    from_twitch = _twitch_refusal_reasons()
    assert from_twitch == {"limit", "cost", "version_removed"}
    assert all(RefusalReason(reason) for reason in from_twitch)
    assert set(SOCKET_REFUSALS) <= from_twitch
    assert all(RefusalReason(status) for status in HELD_REVOCATIONS)
    assert set(HELD_REVOCATIONS) <= set(RETRY_AFTER)
    # Nothing else can be recorded: the record refuses any other word.
    with pytest.raises(pydantic.ValidationError):
        Refusal(key="k", version="1", reason="busy", at=datetime.now(UTC))


def test_every_refusal_reason_has_a_sentence_for_the_page() -> None:
    assert set(HELD_BACK) == set(RefusalReason)
    assert all(sentence.strip().endswith(".") for sentence in HELD_BACK.values())
