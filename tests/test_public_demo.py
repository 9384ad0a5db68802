"""A public demo (`SEV_DEMO=1`) as a stranger meets it: `sev demo` as a process, reached over real
HTTP from other addresses (`X-Forwarded-For`, which `sev demo` trusts from its loopback proxy).

Its simulated Twitch is SEV's, not the stranger's: the documented demo secret gets no app token
there, and requests that fail authentication spend none of SEV's Helix points. The shareable
page's login lookups are shared out per client, so one stranger cannot make it fail for others.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.fernet import Fernet

from sev.config import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, Settings, load_settings
from sev.profiles import CLIENT_LOOKUPS_PER_MINUTE, LOGIN_LOOKUPS_PER_MINUTE
from tests.support.polling import eventually
from tests.support.processes import DemoProcess

STRANGER = "203.0.113.9"


@pytest.fixture(scope="module")
def public_demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoProcess]:
    """`sev demo` with SEV_DEMO=1, shared by the module (each test uses its own addresses and
    streamers, so none sees another's cache or budget)."""
    demo = DemoProcess(tmp_path_factory.mktemp("public-demo"), {"SEV_DEMO": "1"})
    demo.start()
    try:
        yield demo
    finally:
        demo.stop()


def _from(address: str) -> dict[str, str]:
    return {"X-Forwarded-For": address}


def _generated_client_secret(demo: DemoProcess) -> str:
    stored = json.loads((demo.data_dir / "demo-secrets.json").read_text())
    return str(stored["twitch_client_secret"])


async def _sevs_subscriptions(demo: DemoProcess, http: httpx.AsyncClient) -> list[str]:
    """The ids of SEV's subscriptions, listed with SEV's own credentials (as SEV does)."""
    token = await http.post(
        f"{demo.url}/_twitch/oauth2/token",
        data={
            "client_id": DEMO_CLIENT_ID,
            "client_secret": _generated_client_secret(demo),
            "grant_type": "client_credentials",
        },
    )
    assert token.status_code == 200, token.text
    listed = await http.get(
        f"{demo.url}/_twitch/helix/eventsub/subscriptions",
        headers={
            "Authorization": f"Bearer {token.json()['access_token']}",
            "Client-Id": DEMO_CLIENT_ID,
        },
    )
    assert listed.status_code == 200, listed.text
    return [s["id"] for s in listed.json()["data"]]


async def test_the_documented_secret_gets_no_token_from_a_public_demo(
    public_demo: DemoProcess,
) -> None:
    twitch = f"{public_demo.url}/_twitch"
    async with httpx.AsyncClient(timeout=10, headers=_from(STRANGER)) as stranger:
        refused = await stranger.post(
            f"{twitch}/oauth2/token",
            data={
                "client_id": DEMO_CLIENT_ID,
                "client_secret": DEMO_CLIENT_SECRET,
                "grant_type": "client_credentials",
            },
        )
        # Twitch answers a wrong client secret 403 ("invalid client secret").
        assert refused.status_code in (400, 401, 403), refused.text
        assert "access_token" not in refused.text
        # SEV subscribed at start (user.authorization.revoke): Twitch lists it to SEV alone.
        ours = await eventually(lambda: _sevs_subscriptions(public_demo, stranger))
        guessed = {"Authorization": "Bearer made-up-token", "Client-Id": DEMO_CLIENT_ID}
        listed = await stranger.get(f"{twitch}/helix/eventsub/subscriptions", headers=guessed)
        assert listed.status_code == 401
        for subscription_id in ours:
            deleted = await stranger.delete(
                f"{twitch}/helix/eventsub/subscriptions",
                params={"id": subscription_id},
                headers=guessed,
            )
            assert deleted.status_code == 401
        assert await _sevs_subscriptions(public_demo, stranger) == ours
    # The generated secret never reaches the log.
    assert _generated_client_secret(public_demo) not in public_demo.logs()


async def test_strangers_failing_authentication_leave_sevs_helix_points_alone(
    public_demo: DemoProcess,
) -> None:
    # More than the bucket holds (800 a minute), faster than it refills: before, these drained
    # SEV's bucket, and SEV's next lookup waited for the reset and gave up (503).
    # 20 at a time: the rest wait for a connection (no pool timeout: on a busy machine 1,000
    # answers can take longer than one request's timeout), the whole bounded below.
    async with (
        asyncio.timeout(180),
        httpx.AsyncClient(
            timeout=httpx.Timeout(30, pool=None),
            headers=_from(STRANGER),
            limits=httpx.Limits(max_connections=20),
        ) as stranger,
    ):
        answers = await asyncio.gather(
            *(
                stranger.get(
                    f"{public_demo.url}/_twitch/helix/users",
                    params={"login": "pixelpaladin"},
                    headers={"Authorization": f"Bearer guess-{i}", "Client-Id": DEMO_CLIENT_ID},
                )
                for i in range(1000)
            )
        )
    assert {a.status_code for a in answers} == {401}
    async with httpx.AsyncClient(timeout=30, headers=_from("198.51.100.7")) as visitor:
        page = await visitor.get(f"{public_demo.url}/streamers/cozycrumpet")
    assert page.status_code == 200, page.text[:300]
    assert "CozyCrumpet" in page.text


async def test_one_client_looking_up_made_up_logins_leaves_genuine_pages_to_the_others(
    public_demo: DemoProcess,
) -> None:
    assert LOGIN_LOOKUPS_PER_MINUTE >= 2 * CLIENT_LOOKUPS_PER_MINUTE
    async with httpx.AsyncClient(timeout=30, headers=_from("203.0.113.50")) as prober:
        statuses = [
            (
                await prober.get(f"{public_demo.url}/streamers/nobody_{secrets.token_hex(6)}")
            ).status_code
            for _ in range(125)
        ]
    # Its own share answers (Twitch has no such channel), then it is told to wait.
    assert statuses[:CLIENT_LOOKUPS_PER_MINUTE] == [404] * CLIENT_LOOKUPS_PER_MINUTE
    assert set(statuses[CLIENT_LOOKUPS_PER_MINUTE:]) == {503}
    async with httpx.AsyncClient(timeout=30, headers=_from("198.51.100.8")) as visitor:
        page = await visitor.get(f"{public_demo.url}/streamers/speedrunsally")
    assert page.status_code == 200, page.text[:300]
    assert "SpeedrunSally" in page.text


def test_a_public_demo_generates_a_client_secret_of_its_own(tmp_path: Path) -> None:
    def load(data_dir: Path, **values: Any) -> Settings:
        return load_settings(_env_file=None, sev_data_dir=data_dir, **values)

    assert load(tmp_path / "local").secret("client") == DEMO_CLIENT_SECRET
    public = load(tmp_path / "public", sev_public_url="https://demo.example.com", sev_demo=True)
    assert public.twitch_client_id == DEMO_CLIENT_ID
    assert public.secret("client") != DEMO_CLIENT_SECRET
    assert len(public.secret("client")) >= 32
    assert public.secret("client") not in repr(public)
    again = load(tmp_path / "public", sev_public_url="https://demo.example.com", sev_demo=True)
    assert again.secret("client") == public.secret("client")


def test_a_demo_made_before_keeps_its_secrets_and_gains_the_missing_one(tmp_path: Path) -> None:
    # Written before the client secret was generated: the others stay, so sessions and stored
    # tokens stay valid.
    older = {
        "twitch_eventsub_secret": "older-eventsub-secret-0123456789",
        "sev_session_secret": "older-session-secret-0123456789-abcdefghij",
        "sev_token_key": Fernet.generate_key().decode(),
    }
    (tmp_path / "demo-secrets.json").write_text(json.dumps(older))
    settings = load_settings(
        _env_file=None,
        sev_data_dir=tmp_path,
        sev_public_url="https://demo.example.com",
        sev_demo=True,
    )
    assert settings.secret("session") == older["sev_session_secret"]
    assert settings.secret("token_key") == older["sev_token_key"]
    stored = json.loads((tmp_path / "demo-secrets.json").read_text())
    assert stored == {**older, "twitch_client_secret": settings.secret("client")}
    assert (tmp_path / "demo-secrets.json").stat().st_mode & 0o077 == 0
