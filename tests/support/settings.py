"""The settings tests run SEV with: as for real Twitch, with the suite's own secrets, and Twitch
wherever the test says (by default a loopback port where nothing listens)."""

from __future__ import annotations

from tests.support.services import free_port

EVENTSUB_SECRET = "test-eventsub-secret-0123456789"
SESSION_SECRET = "test-session-secret-0123456789-abcdefghij"
TOKEN_KEY = "PlXSZG4DFHehgoeUGU0_hLVFSc_9YWaIpW1SYcL9Aew="


def real_twitch_env(
    twitch_url: str | None = None,
    *,
    client_id: str = "test-client-id",
    client_secret: str = "test-client-secret",
) -> dict[str, str]:
    """SEV's environment as for real Twitch, with Twitch's OAuth and Helix at `twitch_url`."""
    twitch = twitch_url or f"http://127.0.0.1:{free_port()}"
    return {
        "TWITCH_CLIENT_ID": client_id,
        "TWITCH_CLIENT_SECRET": client_secret,
        "TWITCH_EVENTSUB_SECRET": EVENTSUB_SECRET,
        "TWITCH_API_URL": f"{twitch}/helix",
        "TWITCH_AUTH_URL": f"{twitch}/oauth2",
        "SEV_SESSION_SECRET": SESSION_SECRET,
        "SEV_TOKEN_KEY": TOKEN_KEY,
    }
