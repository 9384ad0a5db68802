"""The `sev` command: serve, demo, simulate, trigger."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from typing import Any

import httpx

from sev.config import SIMULATOR_MOUNT, SettingsError, is_local_host, load_settings


def _serve(args: argparse.Namespace, *, demo: bool = False) -> int:
    import uvicorn

    from sev.app import create_app
    from sev.live import MAX_MESSAGE_BYTES

    try:
        settings = load_settings()
        if demo and not settings.demo:
            sys.exit(
                "sev demo runs the simulated Twitch: unset TWITCH_CLIENT_ID, or use `sev serve`"
            )
        port = args.port or settings.port
        overrides: dict[str, Any] = {}
        if "sev_public_url" not in settings.model_fields_set and port != 8000:
            # Nobody said where SEV is reachable: it is here, on the port asked for.
            overrides["sev_public_url"] = f"http://localhost:{port}"
        if args.transport is not None:
            overrides["sev_eventsub_transport"] = args.transport
        if overrides:
            settings = load_settings(**overrides)
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
        # uvicorn's websockets-sansio protocol, lean per viewer (sev/live/_lean/wire.py).
        ws="sev.live:Wire",
        # A message past this is refused from its frame header, never buffered first.
        ws_max_size=MAX_MESSAGE_BYTES,
        log_level="info",
    )
    return 0


def _demo(args: argparse.Namespace) -> int:
    return _serve(args, demo=True)


def _simulate(args: argparse.Namespace) -> int:
    from twitchsim import main as simulator_main

    # Without --port, the simulated Twitch's own default applies (one default, kept there).
    port = [] if args.port is None else ["--port", str(args.port)]
    data_dir = [] if args.data_dir is None else ["--data-dir", args.data_dir]
    return simulator_main([*port, *data_dir], prog="sev simulate")


def _trigger_url(args: argparse.Namespace) -> str:
    if args.url:
        return str(args.url).rstrip("/")
    try:
        settings = load_settings()
    except SettingsError as error:
        sys.exit(f"sev trigger: {error}")
    if "sev_public_url" in settings.model_fields_set:
        return settings.sev_public_url
    # Where `sev demo` is when nobody said otherwise: here, on its port (PORT, else 8000).
    return f"http://localhost:{settings.port}"


def _trigger(args: argparse.Namespace) -> int:
    from sev import demo_trigger

    problem = demo_trigger.check(args.type, args.streamer)
    if problem:
        print(f"sev trigger: {problem}", file=sys.stderr)  # noqa: T201
        return 2
    base = _trigger_url(args)
    target = base if args.simulator else f"{base}{SIMULATOR_MOUNT}"
    try:
        response = httpx.post(
            f"{target}/control/trigger",
            json={"type": args.type, "broadcaster": args.streamer, "count": args.count},
            timeout=30,
        )
    except httpx.HTTPError as error:
        sys.exit(f"sev trigger: cannot reach the simulated Twitch at {target}: {error}")
    if response.status_code == 404:
        print(f"sev trigger: {demo_trigger.unknown_account(args.streamer)}", file=sys.stderr)  # noqa: T201
        return 2
    if response.status_code >= 400:
        sys.exit(f"sev trigger: {response.status_code} {response.text.strip()[:300]}")
    answer = response.json()
    sent = answer.get("sent", [])
    print(json.dumps({"sent": len(sent), "message_ids": sent} | _reason(answer)))  # noqa: T201
    if sent:
        return 0
    sev_url = None if args.simulator else base
    print(f"sev trigger: {demo_trigger.why(answer, sev_url)}", file=sys.stderr)  # noqa: T201
    return 1


def _reason(answer: dict[str, object]) -> dict[str, object]:
    return {"reason": answer["reason"]} if "reason" in answer else {}


def _count(value: str) -> int:
    from twitchsim.control import MAX_TRIGGER_COUNT

    try:
        count = int(value)
    except ValueError:
        count = 0
    if not 1 <= count <= MAX_TRIGGER_COUNT:
        raise argparse.ArgumentTypeError(f"a whole number from 1 to {MAX_TRIGGER_COUNT}")
    return count


class _Parser(argparse.ArgumentParser):
    """argparse, with an epilog made only when the help is shown: `sev trigger`'s lists the
    simulated Twitch's types and accounts, which `sev serve` has no reason to load."""

    def __init__(
        self, *args: Any, epilog_from: Callable[[], str] | None = None, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self._epilog_from = epilog_from

    def format_help(self) -> str:
        if self._epilog_from is not None:
            self.epilog = self._epilog_from()
        return super().format_help()


def _trigger_listing() -> str:
    from sev import demo_trigger

    return demo_trigger.listing()


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="sev", description="StreamerEventViewer")
    commands = parser.add_subparsers(dest="command", required=True)
    for name, help_text, handler in (
        ("serve", "run SEV (uvicorn) with the settings from the environment", _serve),
        ("demo", "run SEV against its simulated Twitch on the embedded store", _demo),
    ):
        command = commands.add_parser(name, help=help_text, description=help_text)
        command.add_argument(
            "--host",
            default="127.0.0.1" if name == "demo" else "0.0.0.0",  # noqa: S104
            help="address to listen on (default: %(default)s)",
        )
        command.add_argument(
            "--port",
            type=int,
            default=None,
            help="port to listen on (default: PORT, else 8000); unless SEV_PUBLIC_URL is set, "
            "SEV's public URL follows it (http://localhost:PORT)",
        )
        command.add_argument(
            "--forwarded-allow-ips",
            default="127.0.0.1",
            help="proxies whose X-Forwarded-* headers are trusted ('*' on Heroku; "
            "default: %(default)s)",
        )
        command.add_argument(
            "--transport",
            choices=("webhook", "websocket"),
            default=None,
            help="how Twitch delivers events (SEV_EVENTSUB_TRANSPORT; default: webhook when "
            "Twitch can reach SEV_PUBLIC_URL, which the simulated Twitch always can, else "
            "websocket)",
        )
        command.set_defaults(handler=handler)
    simulate = commands.add_parser(
        "simulate",
        help="run the simulated Twitch alone",
        description="Run the simulated Twitch alone, as `python -m twitchsim` does (which takes "
        "more options: python -m twitchsim --help).",
    )
    simulate.add_argument(
        "--port", type=int, default=None, help="port to listen on (default: 8001)"
    )
    simulate.add_argument(
        "--data-dir",
        default=None,
        help="keep its state (tokens, grants, subscriptions) here across restarts "
        "(default: in memory only)",
    )
    simulate.set_defaults(handler=_simulate)
    trigger = commands.add_parser(
        "trigger",
        help="make the simulated Twitch send events",
        description="Make the simulated Twitch send signed EventSub events in a demo streamer's\n"
        "channel, to the subscriptions SEV holds for it (a favourite, a connected channel).",
        epilog_from=_trigger_listing,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    trigger.add_argument("type", help="a twitch-cli alias or an EventSub type (listed below)")
    trigger.add_argument(
        "--streamer", required=True, help="the demo streamer's login (listed below)"
    )
    trigger.add_argument(
        "--count", type=_count, default=1, help="how many events, 1 to 100 (default: %(default)s)"
    )
    trigger.add_argument(
        "--url",
        help="SEV's base URL (default: SEV_PUBLIC_URL, else http://localhost:PORT, "
        "else http://localhost:8000)",
    )
    trigger.add_argument(
        "--simulator",
        action="store_true",
        help="--url is a standalone simulated Twitch (`sev simulate`), not SEV",
    )
    trigger.set_defaults(handler=_trigger)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `sev` command."""
    args = _parser().parse_args(argv)
    return int(args.handler(args))


if __name__ == "__main__":
    sys.exit(main())
