"""Every EventSub type SEV subscribes to, as Twitch delivers it: the challenge of each type is
answered, and a notification of each type is stored with a meaningful summary.

These stand in for Twitch's CLI (`event verify-subscription` / `event trigger`), which the Go
module proxy does not serve here: payloads come from the simulated Twitch's generator, which
follows Twitch's documented examples, and are signed as Twitch signs them.
"""

from __future__ import annotations

import random

import pytest

from sev.events import CATALOGUE, EventType
from tests.support.apps import AppHandle
from tests.support.factories import signed_request
from twitchsim.directory import Directory
from twitchsim.generator import generate_event

URL = "/webhooks/eventsub"
IDS = [f"{entry.type}:{entry.condition_key}" for entry in CATALOGUE]


def _envelope(entry: EventType, broadcaster_id: str) -> dict[str, object]:
    return {
        "id": f"sub-{entry.key}",
        "type": entry.type,
        "version": entry.version,
        "status": "enabled",
        "cost": 0,
        "condition": entry.condition(broadcaster_id),
        "transport": {"method": "webhook", "callback": "http://sev/webhooks/eventsub"},
        "created_at": "2026-11-28T10:00:00Z",
    }


@pytest.mark.parametrize("entry", CATALOGUE, ids=IDS)
async def test_webhook_answers_the_challenge_of_each_type(app: AppHandle, entry: EventType) -> None:
    body = {"challenge": f"challenge-for-{entry.key}", "subscription": _envelope(entry, "7")}
    headers, raw = signed_request(body, message_type="webhook_callback_verification")
    headers["Twitch-Eventsub-Subscription-Type"] = entry.type
    headers["Twitch-Eventsub-Subscription-Version"] = entry.version
    response = await app.client.post(URL, headers=headers, content=raw)
    assert (response.status_code, response.text) == (200, f"challenge-for-{entry.key}")
    assert response.headers["content-type"].split(";")[0] == "text/plain"


@pytest.mark.parametrize("entry", CATALOGUE, ids=IDS)
async def test_webhook_stores_each_type_with_a_meaningful_summary(
    app: AppHandle, entry: EventType
) -> None:
    directory = Directory()
    broadcaster = next(account for account in directory if account.streamer)
    rng = random.Random(entry.key)
    data = generate_event(
        entry.type,
        broadcaster,
        directory,
        rng,
        raided=entry.condition_key == "to_broadcaster_user_id",
    )
    body = {"subscription": _envelope(entry, broadcaster.id), "event": data}
    headers, raw = signed_request(body)
    response = await app.client.post(URL, headers=headers, content=raw)
    assert response.status_code == 204
    [event] = await app.store.latest_events(broadcaster.id, 10)
    assert event.type == entry.type
    assert event.broadcaster.id == broadcaster.id
    assert event.broadcaster.login == broadcaster.login
    assert not event.summary.endswith(" event"), event.summary
    assert "None" not in event.summary
    assert event.data == data
