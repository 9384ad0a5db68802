"""EventSub over WebSocket: SEV connects out to Twitch, so it needs no public URL. Subscriptions
over a WebSocket need a user access token and belong to that user's connection, so SEV keeps one
connection per user whose token carries subscriptions (a *carrier*): `plan.py` says who carries
which channel (a streamer their own, else one logged-in viewer who favours it, for the public
types only); `carrier.py` keeps one carrier's connection (welcome, keepalive, reconnects, close
codes) and admits only fresh messages for subscriptions it holds, handing them to the webhook's
path; `rules.py` holds Twitch's close codes and the pure reconnect and keepalive checks;
`transport.py` keeps all carriers of this process under store leases and their subscriptions in
line with the plan.
"""

from sev.eventsub.websocket.carrier import TICK_S, CarrierSocket
from sev.eventsub.websocket.plan import (
    NO_CARRIER,
    Plan,
    Wanted,
    plan,
    refusal,
    token_of,
)
from sev.eventsub.websocket.rules import (
    CLOSES,
    KEEPALIVE_DEFAULT_S,
    KEEPALIVE_MAX_S,
    TWITCH_EVENTSUB_HOST,
    keepalive_floor,
    keepalive_timeout,
    reconnect_allowed,
)
from sev.eventsub.websocket.transport import Receive, SocketTransport

__all__ = [
    "CLOSES",
    "KEEPALIVE_DEFAULT_S",
    "KEEPALIVE_MAX_S",
    "NO_CARRIER",
    "TICK_S",
    "TWITCH_EVENTSUB_HOST",
    "CarrierSocket",
    "Plan",
    "Receive",
    "SocketTransport",
    "Wanted",
    "keepalive_floor",
    "keepalive_timeout",
    "plan",
    "reconnect_allowed",
    "refusal",
    "token_of",
]
