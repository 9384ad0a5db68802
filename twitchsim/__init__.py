"""The simulated Twitch: OAuth, Helix users, EventSub subscriptions and signed deliveries.

An ASGI app of its own (`Simulator.app`) that speaks Twitch's wire contract, so SEV's
`TwitchClient` talks to it exactly as to Twitch; only the base URLs differ
(`<base>/oauth2`, `<base>/helix`). Mounted inside another app, the host must call
`start()` and `stop()` from its own lifespan (a mounted app's lifespan does not run).

Browserless consent: `GET <base>/oauth2/authorize?...&login=<demo login>&decision=authorize`
redirects straight back with a code (`decision=cancel` answers `access_denied`).
"""

from .config import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, Faults, SimulatorConfig
from .core import Simulator, create_simulator
from .deliveries import sign
from .directory import DEMO_ACCOUNTS, Account
from .serve import main

__all__ = [
    "DEMO_ACCOUNTS",
    "DEMO_CLIENT_ID",
    "DEMO_CLIENT_SECRET",
    "Account",
    "Faults",
    "Simulator",
    "SimulatorConfig",
    "create_simulator",
    "main",
    "sign",
]
