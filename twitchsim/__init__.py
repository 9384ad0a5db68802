"""The simulated Twitch: OAuth, Helix users, EventSub subscriptions and signed deliveries.

An ASGI app of its own (`Simulator.app`) that speaks Twitch's wire contract, so SEV's
`TwitchClient` talks to it exactly as to Twitch; only the base URLs differ
(`<base>/oauth2`, `<base>/helix`). Mounted inside another app, the host must call
`start()` and `stop()` from its own lifespan (a mounted app's lifespan does not run).

Browserless consent: `GET <base>/oauth2/authorize?...&login=<demo login>&decision=authorize`
redirects straight back with a code (`decision=cancel` answers `access_denied`).

Standalone: it imports nothing of SEV. Where SEV has a class or function of the same name for
its own side of the wire, the simulator's carries a `Sim` prefix or its own verb
(`SimGrant`, `SimSubscriptions`, `SimMessage`, `SimEvent`, `sign_message`, `generate_event`).
"""

from .config import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, Faults, SimulatorConfig
from .core import Simulator, create_simulator
from .deliveries import sign_message
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
    "sign_message",
]
