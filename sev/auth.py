"""Twitch login: placeholder until the login issue lands (routes and the token duty)."""

from __future__ import annotations

from fastapi import APIRouter

from sev.config import Settings
from sev.duties import Duties
from sev.store import Store
from sev.twitch import TwitchClient

router = APIRouter()


def add_duties(duties: Duties, settings: Settings, store: Store, twitch: TwitchClient) -> None:
    """Register the login's background duties (hourly token validation)."""
