"""`sev trigger`'s words: what it can send, in whose channel, and why it sent nothing.

The simulated Twitch owns the facts (its types, twitch-cli's aliases for them, its demo
accounts, and a machine-readable reason when a trigger reached nobody); SEV's catalogue says
which types need the streamer's channel connected. This module only puts them into words.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from sev.events import CONNECTED_TYPES, PUBLIC_TYPES
from twitchsim.directory import DEMO_ACCOUNTS
from twitchsim.triggers import ALIASES, CHANNEL_TYPES, resolve

_PUBLIC = {entry.type for entry in PUBLIC_TYPES}
_CONNECTED = {entry.type for entry in CONNECTED_TYPES}


def _rows(types: set[str]) -> list[str]:
    rows = []
    for type_ in (t for t in CHANNEL_TYPES if t in types):
        aliases = [a for a in ALIASES if a.type == type_]
        for alias in aliases:
            fixed = "".join(f", {k}={json.dumps(v)}" for k, v in alias.fields.items())
            rows.append(f"    {alias.name:<20} {type_}{fixed}")
        if not aliases:
            rows.append(f"    {'':<20} {type_}")
    return rows


def _logins(streamer: bool) -> str:
    return ", ".join(a.login for a in DEMO_ACCOUNTS if a.streamer is streamer)


def listing() -> str:
    """The event types (with their aliases) and the demo accounts, for `sev trigger --help`."""
    other = set(CHANNEL_TYPES) - _PUBLIC - _CONNECTED
    lines = [
        "event types (twitch-cli's alias, or the EventSub type itself):",
        "  for any streamer someone has set as favourite in SEV:",
        *_rows(_PUBLIC),
        "  only once the streamer has connected their channel",
        '  (log in to SEV as the streamer and press "Connect your channel"):',
        *_rows(_CONNECTED),
    ]
    if other:
        lines += ["  that SEV does not subscribe to:", *_rows(other)]
    return "\n".join(
        [
            *lines,
            "",
            f"demo streamers: {_logins(True)}",
            f"demo viewers (to log in as; no channel of their own): {_logins(False)}",
            "",
            "example: sev trigger raid --streamer pixelpaladin --count 3",
        ]
    )


def check(name: str, login: str) -> str | None:
    """What is wrong with a trigger's type or streamer, in words; None when both exist."""
    try:
        resolve(name)
    except ValueError:
        return f"unknown event type {name!r}; send one of these:\n{listing()}"
    if not any(a.login == login.strip().lower() for a in DEMO_ACCOUNTS):
        return unknown_account(login)
    return None


def unknown_account(login: str) -> str:
    """The words for a login the simulated Twitch does not know."""
    return f"the simulated Twitch has no account {login!r}; the demo streamers are {_logins(True)}"


def why(answer: Mapping[str, Any], sev_url: str | None) -> str:
    """Why a trigger sent nothing, from the simulated Twitch's `reason` and its details."""
    type_, login = answer.get("type", "this type"), answer.get("broadcaster", "the streamer")
    where = f"SEV ({sev_url}/)" if sev_url else "SEV"
    then = ", then trigger again"
    if answer.get("reason") == "subscription_not_enabled":
        statuses = ", ".join(answer.get("statuses") or []) or "not enabled"
        if "webhook_callback_verification_pending" in statuses:
            return (
                f"nothing sent: SEV's subscription to {type_} for {login} is still waiting for "
                "its challenge to be answered; trigger again in a moment"
            )
        return (
            f"nothing sent: SEV's subscription to {type_} for {login} is {statuses}; SEV "
            "subscribes again when it may (the streamer page says why)"
        )
    if answer.get("reason") != "no_subscription":
        return f"nothing sent ({answer.get('reason', 'no reason given')})"
    if not answer.get("channel_subscribed"):
        return (
            f"nothing sent: SEV has no subscription in {login}'s channel, as nobody has set "
            f"{login} as their favourite streamer yet: log in to {where} and set {login} as "
            f"your favourite{then}"
        )
    if not answer.get("scope_granted"):
        return (
            f"nothing sent: {type_} needs {login} to connect their channel (it grants "
            f"{answer.get('scope')}): log in to {where} as {login} and press "
            f'"Connect your channel"{then}'
        )
    return (
        f"nothing sent: SEV has no subscription to {type_} for {login} yet: it may still be "
        "subscribing, or Twitch refused it (the streamer page says why); trigger again in a "
        "moment"
    )
