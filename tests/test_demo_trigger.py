"""`sev trigger`'s words for each reason the simulated Twitch gives for sending nothing."""

from __future__ import annotations

from typing import Any

import pytest

from sev.demo_trigger import why

BASE = {"type": "channel.cheer", "broadcaster": "bytebard", "scope": "bits:read"}


@pytest.mark.parametrize(
    ("answer", "words"),
    [
        pytest.param(
            {"reason": "no_subscription", "channel_subscribed": False, "scope_granted": False},
            "nobody has set bytebard as their favourite streamer yet: log in to SEV "
            "(http://localhost:8000/) and set bytebard as your favourite",
            id="nobody-favours",
        ),
        pytest.param(
            {"reason": "no_subscription", "channel_subscribed": True, "scope_granted": False},
            "channel.cheer needs bytebard to connect their channel (it grants bits:read): log "
            'in to SEV (http://localhost:8000/) as bytebard and press "Connect your channel"',
            id="not-connected",
        ),
        pytest.param(
            {"reason": "no_subscription", "channel_subscribed": True, "scope_granted": True},
            "SEV has no subscription to channel.cheer for bytebard yet: it may still be "
            "subscribing, or Twitch refused it",
            id="connected-not-subscribed",
        ),
        pytest.param(
            {
                "reason": "subscription_not_enabled",
                "statuses": ["webhook_callback_verification_pending"],
            },
            "still waiting for its challenge to be answered; trigger again in a moment",
            id="pending",
        ),
        pytest.param(
            {"reason": "subscription_not_enabled", "statuses": ["authorization_revoked"]},
            "SEV's subscription to channel.cheer for bytebard is authorization_revoked",
            id="revoked",
        ),
        pytest.param({"reason": "maintenance"}, "nothing sent (maintenance)", id="unknown-reason"),
    ],
)
def test_why_nothing_was_sent_in_words(answer: dict[str, Any], words: str) -> None:
    said = why({**BASE, **answer}, "http://localhost:8000")
    assert said.startswith("nothing sent")
    assert words in said


def test_why_against_a_standalone_simulator_names_no_url() -> None:
    answer = {**BASE, "reason": "no_subscription", "channel_subscribed": False}
    assert "log in to SEV and set bytebard" in why(answer, None)
