"""Settings and fault switches of the simulated Twitch."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

# The demo app registration of a local demo and of `python -m twitchsim`. Valid only against the
# simulated Twitch: real Twitch has never issued these, so a deployment that leaks them leaks
# nothing. A simulator anyone can reach (SEV's public demo) is given a secret of its own.
DEMO_CLIENT_ID = "sevdemo0simulated0client000001"
DEMO_CLIENT_SECRET = "sevdemo0secret0only0valid0here"  # noqa: S105 - documented public demo value


@dataclass
class SimulatorConfig:
    """How the simulated Twitch behaves; every field has a demo-friendly default."""

    client_id: str = DEMO_CLIENT_ID
    # Kept out of the repr: a public demo's is SEV's own, and a logged config must not show it.
    client_secret: str = field(default=DEMO_CLIENT_SECRET, repr=False)
    token_lifetime_s: int = 4 * 3600
    events_per_minute: float = 0
    delivery_timeout_s: float = 5
    retry_delays_s: tuple[float, ...] = (1, 2, 4, 8, 16)
    rate_limit_points: int = 800
    rate_limit_window_s: float = 60
    public_url: str = ""
    max_concurrent_deliveries: int = 32
    seed: int | None = None
    # Where deliveries may go: empty, any http(s) URL (tests run receivers on free ports); a
    # demo lists its own webhook only, so the simulator cannot be made to POST elsewhere.
    callbacks: tuple[str, ...] = ()
    # A public demo: /control (triggers, faults, revocations, state) answers nobody. Otherwise
    # it answers loopback clients only.
    public: bool = False
    # Where its state survives a restart (persistence.py), as Twitch's does; None: memory only,
    # so a test's fresh simulator starts empty.
    data_dir: Path | None = None
    # EventSub WebSocket (websocket.py): Twitch takes keepalive_timeout_seconds from 10 to 600;
    # tests lower the floor to wait a second, not ten.
    ws_min_keepalive_s: int = 10
    # How long a client has to connect to a session_reconnect's URL ("30 seconds", Twitch's
    # Handling WebSocket Events) before the old connection is closed with 4004.
    ws_reconnect_grace_s: float = 30


@dataclass
class Faults:
    """Switches that make deliveries misbehave the ways Twitch is allowed to (and one it is not)."""

    duplicate: bool = False
    out_of_order: bool = False
    delay_s: float = 0.0
    bad_signature: bool = False
    # Revoking one user token ends the user's whole authorization of the app, as disconnecting
    # does. Twitch's docs do not say whether /oauth2/revoke does this; SEV must survive it.
    revoke_ends_authorization: bool = False

    def update(self, values: dict[str, Any]) -> None:
        """Set the named switches; unknown names or wrong types raise ValueError."""
        known = {f.name: f.type for f in fields(self)}
        for name, value in values.items():
            if name not in known:
                raise ValueError(f"unknown fault {name!r}")
            if name == "delay_s":
                if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                    raise ValueError("delay_s must be a number >= 0")
                value = float(value)
            elif not isinstance(value, bool):
                raise ValueError(f"{name} must be true or false")
        for name, value in values.items():
            setattr(self, name, float(value) if name == "delay_s" else value)

    def as_dict(self) -> dict[str, Any]:
        """The switches as JSON-ready values."""
        return {f.name: getattr(self, f.name) for f in fields(self)}
