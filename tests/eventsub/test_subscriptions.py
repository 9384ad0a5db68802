"""Favourite → shared EventSub subscriptions, against the simulated Twitch over real HTTP.

SEV and the simulated Twitch run as separate processes; users are created through the store
(login has its own tests) and carry a session cookie signed with SEV's session secret.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from sev.config import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET
from sev.eventsub.subscriptions import Subscriptions
from sev.store import Broadcaster, Store, SubscriptionRecord, User, create_store
from sev.twitch import TwitchClient
from tests.support.apps import test_settings as app_settings
from tests.support.factories import CSRF, session_cookie
from tests.support.polling import eventually
from tests.support.processes import SevProcess, SimulatorProcess
from tests.support.settings import EVENTSUB_SECRET, real_twitch_env

PUBLIC_SET = 6  # stream.online, stream.offline, channel.update, raid to, raid from, user.update


pytestmark = pytest.mark.sev_env(SEV_RECONCILE_INTERVAL_S="0.5", SEV_RELEASE_GRACE_S="1")


async def _favourite(client: httpx.AsyncClient, streamer: str) -> httpx.Response:
    return await client.post("/favorite", data={"streamer": streamer, "csrf_token": CSRF})


def _subscriptions_of(simulator: SimulatorProcess, broadcaster_id: str) -> list[dict[str, Any]]:
    return [s for s in simulator.subscriptions() if broadcaster_id in s["condition"].values()]


async def _streamer_id(simulator: SimulatorProcess, login: str) -> str:
    accounts = httpx.get(f"{simulator.url}/control/accounts", timeout=10).json()["data"]
    return str(next(a["id"] for a in accounts if a["login"] == login))


async def test_favourite_creates_the_public_subscriptions_once_for_two_viewers(
    simulator: SimulatorProcess, viewer: Callable[[str], httpx.AsyncClient], sev_store: Store
) -> None:
    streamer_id = await _streamer_id(simulator, "pixelpaladin")
    first = await _favourite(viewer("501"), "  PixelPaladin ")
    assert first.status_code == 303
    assert first.headers["location"] == "/streamers/pixelpaladin"
    second = await _favourite(viewer("502"), "pixelpaladin")
    assert second.status_code == 303
    await eventually(
        lambda: (
            len(_subscriptions_of(simulator, streamer_id)) == PUBLIC_SET
            and all(s["status"] == "enabled" for s in _subscriptions_of(simulator, streamer_id))
        )
    )
    # The verification challenge reached SEV's webhook and was answered right.
    assert len(_subscriptions_of(simulator, streamer_id)) == PUBLIC_SET
    assert await sev_store.favourite_count(streamer_id) == 2
    assert len(await sev_store.list_subscriptions(streamer_id)) == PUBLIC_SET


async def test_a_challenge_answered_while_its_record_is_saved_still_enables_it(
    simulator: SimulatorProcess, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Twitch sends the challenge on its own schedule: SEV's webhook can answer it (`verified`)
    after `create_subscription` returned but before its record is in the store. Both sides then
    look for the other; whichever comes last must enable the record, or the page shows the kind
    as starting until the next reconcile. The real store and the simulated Twitch; the challenge
    is answered exactly as each record's save begins (seen once in a full run, by chance)."""
    env = real_twitch_env(simulator.url, client_id=DEMO_CLIENT_ID, client_secret=DEMO_CLIENT_SECRET)
    settings = app_settings(tmp_path, **{name.lower(): value for name, value in env.items()})
    store = create_store(settings)
    await store.open()
    try:
        async with httpx.AsyncClient(timeout=10) as http:
            twitch = TwitchClient(
                http,
                client_id=DEMO_CLIENT_ID,
                client_secret=DEMO_CLIENT_SECRET,
                api_url=settings.twitch_api_url,
                auth_url=settings.twitch_auth_url,
            )

            async def notify(_name: str, _data: dict[str, Any]) -> None:
                return None

            subscriptions = Subscriptions(settings, store, twitch, notify)
            streamer = Broadcaster(
                id=await _streamer_id(simulator, "pixelpaladin"),
                login="pixelpaladin",
                display_name="PixelPaladin",
            )
            await store.save_broadcaster(streamer)
            save = store.save_subscription
            answered: list[str] = []

            async def save_as_the_challenge_is_answered(record: SubscriptionRecord) -> None:
                if record.id not in answered:
                    answered.append(record.id)
                    await subscriptions.verified({"id": record.id})
                await save(record)

            monkeypatch.setattr(store, "save_subscription", save_as_the_challenge_is_answered)
            await subscriptions.ensure(streamer)
        records = await store.list_subscriptions(streamer.id)
        assert len(records) == PUBLIC_SET
        assert sorted(answered) == sorted(r.id for r in records)
        assert {r.status for r in records} == {"enabled"}
    finally:
        await store.close()


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
    await eventually(lambda: _subscriptions_of(simulator, streamer_id) == [])
    assert len(_subscriptions_of(simulator, other_id)) == PUBLIC_SET


@pytest.mark.parametrize(
    ("streamer", "status", "message"),
    [
        ("not a login!", 422, "1 to 25 letters"),
        ("x" * 26, 422, "1 to 25 letters"),
        ("", 422, "Enter a login"),
        ("nobody_by_this_name", 404, "no Twitch channel"),
    ],
)
async def test_favourite_refuses_bad_names_and_saves_nothing(
    viewer: Callable[[str], httpx.AsyncClient],
    sev_store: Store,
    streamer: str,
    status: int,
    message: str,
) -> None:
    response = await _favourite(viewer("501"), streamer)
    assert response.status_code == status
    assert message in response.text
    assert 'name="streamer"' in response.text  # the form again, with the error in place
    user = await sev_store.get_user("501")
    assert user is not None and user.favorite_id is None
    assert await sev_store.list_broadcasters() == []


async def test_favourite_answers_503_when_twitch_is_down_and_saves_nothing(
    simulator: SimulatorProcess, viewer: Callable[[str], httpx.AsyncClient], sev_store: Store
) -> None:
    simulator.stop()
    response = await _favourite(viewer("501"), "pixelpaladin")
    assert response.status_code == 503
    assert "Twitch is not answering" in response.text
    user = await sev_store.get_user("501")
    assert user is not None and user.favorite_id is None


async def test_favourite_needs_the_csrf_token(
    viewer: Callable[[str], httpx.AsyncClient], sev_store: Store
) -> None:
    response = await viewer("501").post("/favorite", data={"streamer": "pixelpaladin"})
    assert response.status_code == 403
    user = await sev_store.get_user("501")
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
    await eventually(lambda: len(_subscriptions_of(simulator, streamer_id)) == PUBLIC_SET)
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
    await eventually(
        lambda: any(
            s["type"] == victim["type"]
            and s["id"] != victim["id"]
            and s["condition"] == victim["condition"]
            for s in _subscriptions_of(simulator, streamer_id)
        )
    )
    assert len(_subscriptions_of(simulator, streamer_id)) == PUBLIC_SET


# -- at Twitch's limits, as Twitch answers ----------------------------------------------------


def _control(simulator: SimulatorProcess, path: str, body: dict[str, Any]) -> Any:
    response = httpx.post(f"{simulator.url}/control/{path}", json=body, timeout=10)
    response.raise_for_status()
    return response.json()


def _helix_total(simulator: SimulatorProcess) -> int:
    return int(httpx.get(f"{simulator.url}/control/requests", timeout=10).json()["total"])


def _helix_since(simulator: SimulatorProcess, before: int) -> list[dict[str, Any]]:
    """The Helix requests made since the total was `before`."""
    body = httpx.get(f"{simulator.url}/control/requests", timeout=10).json()
    new = body["total"] - before
    return list(body["data"][-new:]) if new > 0 else []


def _all_enabled(simulator: SimulatorProcess, broadcaster_id: str, count: int) -> bool:
    subs = _subscriptions_of(simulator, broadcaster_id)
    return len(subs) == count and all(s["status"] == "enabled" for s in subs)


async def _streamer(client: httpx.AsyncClient, login: str) -> dict[str, Any]:
    response = await client.get(f"/api/streamers/{login}/events")
    assert response.status_code == 200, response.text
    streamer: dict[str, Any] = response.json()["streamer"]
    return streamer


async def test_steady_reconcile_lists_and_writes_nothing(
    simulator: SimulatorProcess, viewer: Callable[[str], httpx.AsyncClient]
) -> None:
    streamer_id = await _streamer_id(simulator, "pixelpaladin")
    alice = viewer("501")
    assert (await _favourite(alice, "pixelpaladin")).status_code == 303
    await eventually(lambda: _all_enabled(simulator, streamer_id, PUBLIC_SET))
    await asyncio.sleep(1.0)  # let a pass settle what it found (statuses, the app's own)
    before = _helix_total(simulator)
    await asyncio.sleep(2.5)  # several reconcile passes at 0.5 s
    made = _helix_since(simulator, before)
    assert len(made) >= 2, "reconcile did not run"
    assert {(r["method"], r["path"]) for r in made} == {("GET", "/helix/eventsub/subscriptions")}
    # Both raid kinds, which Twitch answers with the unused side as "", show as on.
    kinds = (await _streamer(alice, "pixelpaladin"))["kinds"]
    assert [k["status"] for k in kinds if k["type"] == "channel.raid"] == ["enabled", "enabled"]
    # SEV's own subscription to users disconnecting it, made once.
    own = [s for s in simulator.subscriptions() if s["type"] == "user.authorization.revoke"]
    assert [s["condition"] for s in own] == [{"client_id": DEMO_CLIENT_ID}]


async def test_limit_of_three_holds_one_type_back_and_spares_the_others(
    simulator: SimulatorProcess, viewer: Callable[[str], httpx.AsyncClient]
) -> None:
    sally = await _streamer_id(simulator, "speedrunsally")
    paladin = await _streamer_id(simulator, "pixelpaladin")
    token = simulator.app_token()
    for n in range(3):  # three stream.online subscriptions for Sally elsewhere (failed or not)
        created = httpx.post(
            f"{simulator.url}/helix/eventsub/subscriptions",
            headers={"Authorization": f"Bearer {token}", "Client-Id": DEMO_CLIENT_ID},
            json={
                "type": "stream.online",
                "version": "1",
                "condition": {"broadcaster_user_id": sally},
                "transport": {
                    "method": "webhook",
                    "callback": f"http://127.0.0.1:9/elsewhere/{n}",
                    "secret": "elsewhere-secret",
                },
            },
            timeout=10,
        )
        assert created.status_code == 202
    alice, bob = viewer("501"), viewer("502")
    assert (await _favourite(alice, "speedrunsally")).status_code == 303
    assert (await _favourite(bob, "pixelpaladin")).status_code == 303
    await eventually(lambda: _all_enabled(simulator, paladin, PUBLIC_SET))
    ours = [
        s
        for s in _subscriptions_of(simulator, sally)
        if "/elsewhere/" not in s["transport"]["callback"]
    ]
    assert sorted(s["type"] for s in ours) == sorted(
        ["stream.offline", "channel.update", "channel.raid", "channel.raid", "user.update"]
    )
    streamer = await _streamer(alice, "speedrunsally")
    online = next(k for k in streamer["kinds"] if k["type"] == "stream.online")
    assert online["held"].startswith("Twitch's limit on subscriptions is reached")
    assert online["held"] in streamer["notices"]
    page = (await alice.get("/streamers/speedrunsally")).text
    assert "Twitch&#39;s limit on subscriptions is reached" in page and "Held back" in page
    before = _helix_total(simulator)
    await asyncio.sleep(2.0)  # several passes: the held type is not asked for again
    assert [r for r in _helix_since(simulator, before) if r["method"] != "GET"] == []


async def test_spent_budget_holds_new_streamers_back_until_room_frees_up(
    simulator: SimulatorProcess, viewer: Callable[[str], httpx.AsyncClient]
) -> None:
    _control(simulator, "limits", {"max_total_cost": PUBLIC_SET + 1})
    paladin = await _streamer_id(simulator, "pixelpaladin")
    cozy = await _streamer_id(simulator, "cozycrumpet")
    alice, bob = viewer("501"), viewer("502")
    assert (await _favourite(alice, "pixelpaladin")).status_code == 303
    await eventually(lambda: _all_enabled(simulator, paladin, PUBLIC_SET))
    assert (await _favourite(bob, "cozycrumpet")).status_code == 303
    streamer = await _streamer(bob, "cozycrumpet")
    held = [k for k in streamer["kinds"] if k["held"]]
    assert len(held) == PUBLIC_SET - 1  # one fitted the budget
    assert all("limit on subscriptions is reached" in k["held"] for k in held)
    assert len(_subscriptions_of(simulator, cozy)) == 1

    async def budget() -> dict[str, Any]:
        async with httpx.AsyncClient(base_url=str(alice.base_url)) as anonymous:
            health: dict[str, Any] = (await anonymous.get("/healthz")).json()["eventsub"]
        return health

    await eventually(lambda: _has(budget, total_cost=PUBLIC_SET + 1))
    assert (await budget())["max_total_cost"] == PUBLIC_SET + 1

    # Alice moves on: Paladin is released after the grace, and Cozy gets the room.
    assert (await _favourite(alice, "cozycrumpet")).status_code == 303
    await eventually(lambda: _all_enabled(simulator, cozy, PUBLIC_SET))
    assert _subscriptions_of(simulator, paladin) == []
    streamer = await _streamer(bob, "cozycrumpet")
    assert streamer["notices"] == [] and not any(k["held"] for k in streamer["kinds"])


async def _has(read: Callable[[], Any], **expected: Any) -> bool:
    found = await read()
    return all(found.get(k) == v for k, v in expected.items())


async def test_removed_user_is_marked_gone_and_not_asked_for_again(
    simulator: SimulatorProcess, viewer: Callable[[str], httpx.AsyncClient], sev: SevProcess
) -> None:
    chaos = await _streamer_id(simulator, "captain_chaos")
    alice = viewer("501")
    assert (await _favourite(alice, "captain_chaos")).status_code == 303
    await eventually(lambda: _all_enabled(simulator, chaos, PUBLIC_SET))
    revoked = _control(simulator, "remove-user", {"login": "captain_chaos"})["revoked"]
    assert len(revoked) == PUBLIC_SET
    # SEV deletes what Twitch revoked and asks for nothing more.
    await eventually(lambda: _subscriptions_of(simulator, chaos) == [])
    streamer = await _streamer(alice, "captain_chaos")
    assert streamer["notices"][0].startswith("Twitch says this account no longer exists")
    before = _helix_total(simulator)
    await asyncio.sleep(2.0)
    assert [r for r in _helix_since(simulator, before) if r["method"] == "POST"] == []


async def test_retired_version_and_maintenance_are_held_and_logged_once(
    simulator: SimulatorProcess, viewer: Callable[[str], httpx.AsyncClient], sev: SevProcess
) -> None:
    llama = await _streamer_id(simulator, "lofi_llama")
    alice = viewer("501")
    assert (await _favourite(alice, "lofi_llama")).status_code == 303
    await eventually(lambda: _all_enabled(simulator, llama, PUBLIC_SET))
    _control(simulator, "revoke", {"status": "version_removed", "type": "channel.update"})
    _control(simulator, "revoke", {"status": "beta_maintenance", "type": "user.update"})

    async def held() -> bool:
        kinds = (await _streamer(alice, "lofi_llama"))["kinds"]
        return sum(1 for k in kinds if k["held"]) == 2

    await eventually(held)
    kinds = {k["type"]: k for k in (await _streamer(alice, "lofi_llama"))["kinds"]}
    assert "retired the version" in kinds["channel.update"]["held"]
    assert "maintenance" in kinds["user.update"]["held"]
    before = _helix_total(simulator)
    await asyncio.sleep(2.0)
    assert [r for r in _helix_since(simulator, before) if r["method"] == "POST"] == []
    assert sev.logs().count("Twitch revoked channel.update v2") == 1


async def test_subscriptions_of_an_earlier_public_url_are_deleted(
    simulator: SimulatorProcess, viewer: Callable[[str], httpx.AsyncClient], sev: SevProcess
) -> None:
    paladin = await _streamer_id(simulator, "pixelpaladin")
    assert (await _favourite(viewer("501"), "pixelpaladin")).status_code == 303
    await eventually(lambda: _all_enabled(simulator, paladin, PUBLIC_SET))
    sev.stop()
    moved = SevProcess.against(
        simulator,
        sev.data_dir.parent,
        env={
            **{k: v for k, v in sev.env.items() if k.startswith("SEV_R")},
            "SEV_PUBLIC_URL": f"http://localhost:{sev.port}",
        },
        port=sev.port,
        data_dir=sev.data_dir,
    )
    moved.start()
    try:
        new_callback = f"http://localhost:{sev.port}/webhooks/eventsub"
        await eventually(
            lambda: (
                _all_enabled(simulator, paladin, PUBLIC_SET)
                and all(
                    s["transport"]["callback"] == new_callback
                    for s in _subscriptions_of(simulator, paladin)
                )
            )
        )
        own = [s for s in simulator.subscriptions() if s["type"] == "user.authorization.revoke"]
        assert [s["transport"]["callback"] for s in own] == [new_callback]
    finally:
        moved.stop()


async def test_conflict_adopts_the_existing_subscription_for_every_kind(
    simulator: SimulatorProcess, tmp_path: Path
) -> None:
    # A SEV that reconciles rarely: between its passes, Twitch already has our subscriptions
    # (a crash after create, before the store saved them) and answers 409 to SEV's create.
    quiet = SevProcess.against(
        simulator, tmp_path / "quiet", env={"SEV_RECONCILE_INTERVAL_S": "3600"}
    )
    (tmp_path / "quiet").mkdir()
    quiet.start()
    try:
        paladin = await _streamer_id(simulator, "pixelpaladin")
        token = simulator.app_token()
        conditions = [
            ("stream.online", "1", {"broadcaster_user_id": paladin}),
            ("channel.raid", "1", {"to_broadcaster_user_id": paladin}),
            ("channel.raid", "1", {"from_broadcaster_user_id": paladin}),
        ]
        existing = set()
        for type_, version, condition in conditions:
            created = httpx.post(
                f"{simulator.url}/helix/eventsub/subscriptions",
                headers={"Authorization": f"Bearer {token}", "Client-Id": DEMO_CLIENT_ID},
                json={
                    "type": type_,
                    "version": version,
                    "condition": condition,
                    "transport": {
                        "method": "webhook",
                        "callback": f"{quiet.url}/webhooks/eventsub",
                        "secret": EVENTSUB_SECRET,
                    },
                },
                timeout=10,
            )
            assert created.status_code == 202, created.text
            existing.add(created.json()["data"][0]["id"])
        cookie = session_cookie(quiet.env["SEV_SESSION_SECRET"], user_id="501", csrf=CSRF)
        async with quiet.store() as quiet_store:
            await quiet_store.save_user(User(id="501", login="viewer501", display_name="V"))
            async with httpx.AsyncClient(
                base_url=quiet.url, cookies={"sev_session": cookie}, timeout=20
            ) as alice:
                assert (await _favourite(alice, "pixelpaladin")).status_code == 303
                await eventually(lambda: _all_enabled(simulator, paladin, PUBLIC_SET))
                kinds = (await _streamer(alice, "pixelpaladin"))["kinds"]
            held = {r.id for r in await quiet_store.list_subscriptions(paladin)}
        assert existing <= held and len(held) == PUBLIC_SET
        assert all(k["status"] == "enabled" for k in kinds if not k["connected_only"])
    finally:
        quiet.stop()


async def test_a_favourite_nobody_holds_any_more_is_released_at_once_and_changes_are_limited(
    simulator: SimulatorProcess, make_sev: Callable[..., SevProcess]
) -> None:
    # An hour of grace and of reconcile: what happens here is the favourite form's own doing.
    sev = make_sev(simulator, SEV_RELEASE_GRACE_S="3600", SEV_RECONCILE_INTERVAL_S="3600")
    paladin = await _streamer_id(simulator, "pixelpaladin")
    sally = await _streamer_id(simulator, "speedrunsally")
    async with sev.store() as store:
        await store.save_user(User(id="501", login="viewer501", display_name="V"))
    cookie = session_cookie(sev.env["SEV_SESSION_SECRET"], user_id="501", csrf=CSRF)
    async with httpx.AsyncClient(
        base_url=sev.url, cookies={"sev_session": cookie}, timeout=20
    ) as alice:
        assert (await _favourite(alice, "pixelpaladin")).status_code == 303
        await eventually(lambda: _all_enabled(simulator, paladin, PUBLIC_SET))
        assert (await _favourite(alice, "speedrunsally")).status_code == 303
        # Paladin's subscriptions cost budget and nobody watches: gone now, not in an hour.
        assert _subscriptions_of(simulator, paladin) == []
        assert len(_subscriptions_of(simulator, sally)) == PUBLIC_SET
        # Ten changes in ten minutes, then a clear answer; setting the same one is no change.
        streamers = ["pixelpaladin", "speedrunsally"] * 4
        for streamer in streamers:
            assert (await _favourite(alice, streamer)).status_code == 303
        assert (await _favourite(alice, "speedrunsally")).status_code == 303
        refused = await _favourite(alice, "cozycrumpet")
        assert refused.status_code == 429
        assert "changed your favourite streamer 10 times" in refused.text
    async with sev.store() as store:
        user = await store.get_user("501")
    assert user is not None and user.favorite_id == sally


async def test_a_strangers_subscription_on_sevs_callback_is_replaced_not_adopted(
    simulator: SimulatorProcess, make_sev: Callable[..., SevProcess]
) -> None:
    # Anyone with an app token can subscribe with SEV's callback and their own secret; SEV's
    # webhook refuses that challenge, so it fails. SEV's create then meets a 409 for it.
    sev = make_sev(simulator, SEV_RECONCILE_INTERVAL_S="3600")
    await eventually(
        lambda: httpx.get(f"{sev.url}/healthz", timeout=10).json()["eventsub"]["checked_at"],
        what="the start-up reconcile",
    )
    paladin = await _streamer_id(simulator, "pixelpaladin")
    stranger = httpx.post(
        f"{simulator.url}/helix/eventsub/subscriptions",
        headers={"Authorization": f"Bearer {simulator.app_token()}", "Client-Id": DEMO_CLIENT_ID},
        json={
            "type": "stream.online",
            "version": "1",
            "condition": {"broadcaster_user_id": paladin},
            "transport": {
                "method": "webhook",
                "callback": f"{sev.url}/webhooks/eventsub",
                "secret": "a-strangers-secret-0123456789",
            },
        },
        timeout=10,
    )
    assert stranger.status_code == 202, stranger.text
    planted = stranger.json()["data"][0]["id"]
    failed = "webhook_callback_verification_failed"
    await eventually(lambda: [s for s in simulator.subscriptions() if s["status"] == failed])
    async with sev.store() as store:
        await store.save_user(User(id="501", login="viewer501", display_name="V"))
    cookie = session_cookie(sev.env["SEV_SESSION_SECRET"], user_id="501", csrf=CSRF)
    async with httpx.AsyncClient(
        base_url=sev.url, cookies={"sev_session": cookie}, timeout=20
    ) as alice:
        assert (await _favourite(alice, "pixelpaladin")).status_code == 303
        await eventually(lambda: _all_enabled(simulator, paladin, PUBLIC_SET))
    (online,) = [s for s in _subscriptions_of(simulator, paladin) if s["type"] == "stream.online"]
    assert online["id"] != planted
    assert planted not in {s["id"] for s in simulator.subscriptions()}
    async with sev.store() as store:
        held = {r.id: r for r in await store.list_subscriptions(paladin)}
    assert held[online["id"]].status == "enabled"
    deliveries = httpx.get(f"{simulator.url}/control/deliveries", timeout=10).json()["data"]
    challenges = {
        d["subscription_id"]: d["status_code"]
        for d in deliveries
        if d["message_type"] == "webhook_callback_verification"
    }
    # SEV's webhook refused the stranger's challenge and answered its own.
    assert challenges[planted] == 403
    assert challenges[online["id"]] == 200
