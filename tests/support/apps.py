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
from sev.store import Store
from sev.web.deps import services_of
from tests.support.settings import real_twitch_env


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
    values: dict[str, Any] = {
        **{name.lower(): value for name, value in real_twitch_env().items()},
        "sev_token_key": Fernet.generate_key().decode(),
        "sev_data_dir": tmp_path / "var",
        "sev_public_url": "http://127.0.0.1:8000",
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
