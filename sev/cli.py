"""The `sev` command: serve, demo, simulate, trigger."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

import httpx

from sev.config import SIMULATOR_MOUNT, SettingsError, is_local_host, load_settings


def _serve(args: argparse.Namespace, *, demo: bool = False) -> int:
    import uvicorn

    from sev.app import create_app

    try:
        settings = load_settings()
        if demo and not settings.demo:
            sys.exit(
                "sev demo runs the simulated Twitch: unset TWITCH_CLIENT_ID, or use `sev serve`"
            )
        port = args.port or settings.port
        if "sev_public_url" not in settings.model_fields_set and port != 8000:
            # Nobody said where SEV is reachable: it is here, on the port asked for.
            settings = load_settings(sev_public_url=f"http://localhost:{port}")
        if settings.demo and not settings.sev_demo and not is_local_host(args.host):
            # The simulated Twitch answers anyone who can reach it: not on a network by accident.
            sys.exit(
                f"SEV cannot start: demo mode (no TWITCH_CLIENT_ID) would listen on {args.host}, "
                "beyond this machine; use --host 127.0.0.1, set the Twitch credentials, or "
                "SEV_DEMO=1 if a public demo is really meant"
            )
        app = create_app(settings)
    except SettingsError as error:
        sys.exit(f"SEV cannot start: {error}")
    if demo:
        print(f"SEV demo: open {settings.sev_public_url}/ and log in with a demo account")  # noqa: T201
    uvicorn.run(
        app,
        host=args.host,
        port=port,
        proxy_headers=True,
        forwarded_allow_ips=args.forwarded_allow_ips,
        ws_per_message_deflate=False,
        log_level="info",
    )
    return 0


def _demo(args: argparse.Namespace) -> int:
    return _serve(args, demo=True)


def _simulate(args: argparse.Namespace) -> int:
    from twitchsim import main as simulator_main

    # Without --port, the simulated Twitch's own default applies (one default, kept there).
    port = [] if args.port is None else ["--port", str(args.port)]
    return simulator_main(port, prog="sev simulate")


def _trigger(args: argparse.Namespace) -> int:
    if args.url:
        base = args.url.rstrip("/")
    else:
        try:
            base = load_settings().sev_public_url
        except SettingsError as error:
            sys.exit(f"sev trigger: {error}")
    target = base if args.simulator else f"{base}{SIMULATOR_MOUNT}"
    try:
        response = httpx.post(
            f"{target}/control/trigger",
            json={"type": args.type, "broadcaster": args.streamer, "count": args.count},
            timeout=30,
        )
    except httpx.HTTPError as error:
        sys.exit(f"sev trigger: cannot reach the simulated Twitch at {target}: {error}")
    if response.status_code >= 400:
        sys.exit(f"sev trigger: {response.status_code} {response.text.strip()[:300]}")
    sent = response.json().get("sent", [])
    print(json.dumps({"sent": len(sent), "message_ids": sent}))  # noqa: T201
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sev", description="StreamerEventViewer")
    commands = parser.add_subparsers(dest="command", required=True)
    for name, help_text, handler in (
        ("serve", "run SEV (uvicorn) with the settings from the environment", _serve),
        ("demo", "run SEV against its simulated Twitch on the embedded store", _demo),
    ):
        command = commands.add_parser(name, help=help_text)
        command.add_argument("--host", default="127.0.0.1" if name == "demo" else "0.0.0.0")  # noqa: S104
        command.add_argument("--port", type=int, default=None, help="default: PORT, or 8000")
        command.add_argument(
            "--forwarded-allow-ips",
            default="127.0.0.1",
            help="proxies whose X-Forwarded-* headers are trusted ('*' on Heroku)",
        )
        command.set_defaults(handler=handler)
    simulate = commands.add_parser("simulate", help="run the simulated Twitch alone")
    simulate.add_argument("--port", type=int, default=None, help="default: 8001")
    simulate.set_defaults(handler=_simulate)
    trigger = commands.add_parser("trigger", help="make the simulated Twitch send events")
    trigger.add_argument("type", help="EventSub type, e.g. channel.cheer")
    trigger.add_argument("--streamer", required=True, help="the streamer's login")
    trigger.add_argument("--count", type=int, default=1)
    trigger.add_argument("--url", help="SEV's base URL (default: SEV_PUBLIC_URL)")
    trigger.add_argument(
        "--simulator",
        action="store_true",
        help="--url is a standalone simulated Twitch (`sev simulate`)",
    )
    trigger.set_defaults(handler=_trigger)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `sev` command."""
    args = _parser().parse_args(argv)
    return int(args.handler(args))


if __name__ == "__main__":
    sys.exit(main())
