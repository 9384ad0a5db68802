"""Run the simulated Twitch on its own: `python -m twitchsim [--port N] [--data-dir DIR]` (or
`sev simulate`)."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from pathlib import Path

import uvicorn

from .config import SimulatorConfig
from .core import Simulator
from .persistence import STATE_FILE

log = logging.getLogger(__name__)

# The one default port of the standalone simulated Twitch (SEV itself defaults to 8000).
DEFAULT_PORT = 8001


def _parser(prog: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog, description="Run the simulated Twitch (OAuth, Helix, EventSub)."
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"port to listen on (default {DEFAULT_PORT})"
    )
    parser.add_argument(
        "--events-per-minute",
        type=float,
        default=0,
        help="demo streams: events a minute while a subscribed streamer is live (default 0: off)",
    )
    parser.add_argument("--public-url", default="", help="external base URL of the simulator")
    parser.add_argument("--seed", type=int, default=None, help="seed for event content")
    parser.add_argument(
        "--token-lifetime", type=int, default=4 * 3600, help="user/app token lifetime in seconds"
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="keep tokens, grants and subscriptions in DIR/twitchsim-state.json across restarts "
        "(default: in memory only)",
    )
    parser.add_argument(
        "--ws-min-keepalive",
        type=int,
        default=10,
        help="EventSub WebSocket: the least keepalive_timeout_seconds a client may ask for "
        "(default 10, as Twitch; tests ask for less)",
    )
    parser.add_argument(
        "--ws-reconnect-grace",
        type=float,
        default=30,
        help="EventSub WebSocket: seconds a client has to move after session_reconnect "
        "(default 30, as Twitch)",
    )
    return parser


def main(argv: Sequence[str] | None = None, prog: str = "python -m twitchsim") -> int:
    """Parse arguments and serve until interrupted; the app's lifespan starts the workers."""
    args = _parser(prog).parse_args(argv)
    config = SimulatorConfig(
        events_per_minute=args.events_per_minute,
        public_url=args.public_url,
        seed=args.seed,
        token_lifetime_s=args.token_lifetime,
        data_dir=args.data_dir,
        ws_min_keepalive_s=args.ws_min_keepalive,
        ws_reconnect_grace_s=args.ws_reconnect_grace,
    )
    sim = Simulator(config)
    base = args.public_url or f"http://{args.host}:{args.port}"
    log.warning(
        "Simulated Twitch (demo accounts only) at %s: TWITCH_AUTH_URL=%s/oauth2 "
        "TWITCH_API_URL=%s/helix client id %s; state %s",
        base,
        base,
        base,
        config.client_id,
        f"kept in {args.data_dir / STATE_FILE}" if args.data_dir else "in memory only",
    )
    uvicorn.run(sim.app, host=args.host, port=args.port, lifespan="on", ws="websockets-sansio")
    return 0
