"""SEV's ASGI app in-process (lifespan run, httpx over ASGITransport) for fast route tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from asgi_lifespan import LifespanManager
from cryptography.fernet import Fernet
from fastapi import FastAPI

from sev.app import create_app
from sev.config import Settings
from sev.deps import services_of
from sev.store import Store
from tests.factories import SECRET
from tests.services import free_port

SESSION_SECRET = "test-session-secret-0123456789-abcdefghij"


@dataclass
class AppHandle:
    client: httpx.AsyncClient
    app: FastAPI
    settings: Settings

    @property
    def store(self) -> Store:
        return services_of(self.app).store


def test_settings(tmp_path: Path, **overrides: Any) -> Settings:
    """Settings as for real Twitch, with Twitch at a loopback port where nothing listens."""
    nowhere = f"http://127.0.0.1:{free_port()}"
    values: dict[str, Any] = {
        "twitch_client_id": "test-client-id",
        "twitch_client_secret": "test-client-secret",
        "twitch_eventsub_secret": SECRET,
        "sev_session_secret": SESSION_SECRET,
        "sev_token_key": Fernet.generate_key().decode(),
        "sev_data_dir": tmp_path / "var",
        "sev_public_url": "http://127.0.0.1:8000",
        "twitch_api_url": f"{nowhere}/helix",
        "twitch_auth_url": f"{nowhere}/oauth2",
        "sev_reconcile_interval_s": 3600,
        "sev_token_validate_interval_s": 3600,
        "mongodb_uri": None,
        "redis_url": None,
        **overrides,
    }
    return Settings(_env_file=None, **values)


@asynccontextmanager
async def running_app(tmp_path: Path, **overrides: Any) -> AsyncIterator[AppHandle]:
    """SEV with its lifespan running, and an httpx client that talks to it in-process."""
    settings = test_settings(tmp_path, **overrides)
    asgi = create_app(settings)
    fastapi_app: FastAPI = asgi.other_asgi_app
    async with LifespanManager(asgi, startup_timeout=30, shutdown_timeout=30) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(
            transport=transport, base_url=settings.sev_public_url
        ) as client:
            yield AppHandle(client=client, app=fastapi_app, settings=settings)
