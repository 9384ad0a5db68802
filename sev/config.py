"""Settings: the only place that reads the environment.

Every variable of ARCHITECTURE.md's table is a field here (the field name is the variable's
name, lower-cased). `Settings()` validates what it reads; `resolve()` then fills in what demo
mode derives (simulated Twitch URLs, generated secrets persisted under `SEV_DATA_DIR`) and checks
the rules that tie several variables together. A bad value raises `SettingsError` with one line
naming the variable.
"""

from __future__ import annotations

import ipaddress
import json
import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from cryptography.fernet import Fernet
from pydantic import (
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

TWITCH_API_URL = "https://api.twitch.tv/helix"
TWITCH_AUTH_URL = "https://id.twitch.tv/oauth2"
TWITCH_EVENTSUB_WS_URL = "wss://eventsub.wss.twitch.tv/ws"
SIMULATOR_MOUNT = "/_twitch"
# The demo app registration, handed to the simulated Twitch that a local demo starts. Valid only
# there (real Twitch has never issued these), so public on purpose. A public demo (SEV_DEMO=1)
# generates its own client secret instead: with this one anybody could take the app's token
# from its simulated Twitch and delete SEV's subscriptions.
DEMO_CLIENT_ID = "sevdemo0simulated0client000001"
DEMO_CLIENT_SECRET = "sevdemo0secret0only0valid0here"  # noqa: S105 - documented public demo value


class SettingsError(Exception):
    """A setting is missing or malformed; the message names the variable."""


def is_local_host(host: str) -> bool:
    """localhost, a name under .localhost, or a loopback address."""
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def is_local_url(url: str) -> bool:
    """Whether a URL points at this machine only."""
    return is_local_host(urlsplit(url).hostname or "")


def _check_url(value: str, variable: str, schemes: tuple[str, ...]) -> str:
    parts = urlsplit(value)
    if parts.scheme not in schemes or not parts.hostname:
        raise ValueError(f"{variable} must be a URL starting with {' or '.join(schemes)}://")
    return value.rstrip("/")


class Settings(BaseSettings):
    """SEV's configuration, read from the environment (and a `.env` file if present)."""

    model_config = SettingsConfigDict(
        env_file=".env", extra="ignore", case_sensitive=False, frozen=True
    )

    twitch_client_id: str | None = None
    twitch_client_secret: SecretStr | None = None
    twitch_eventsub_secret: SecretStr | None = None
    sev_public_url: str = "http://localhost:8000"
    sev_session_secret: SecretStr | None = None
    sev_token_key: SecretStr | None = None
    mongodb_uri: SecretStr | None = None
    sev_data_dir: Path = Path("./var")
    redis_url: SecretStr | None = None
    twitch_api_url: str = TWITCH_API_URL
    twitch_auth_url: str = TWITCH_AUTH_URL
    # How Twitch delivers events: "webhook" (Twitch POSTs to SEV_PUBLIC_URL, which must be
    # public https) or "websocket" (SEV connects out; no public URL). None: chosen by
    # `eventsub_transport`.
    sev_eventsub_transport: Literal["webhook", "websocket"] | None = None
    twitch_eventsub_ws_url: str = TWITCH_EVENTSUB_WS_URL
    # With several processes, each WebSocket is held by one of them for this long at a time
    # (renewed a few times per period); another takes over within it when the holder dies.
    sev_eventsub_lease_s: float = Field(default=30.0, ge=1, le=3600)
    sev_demo: bool = False
    # Per live demo stream: one event every 10-40 s leaves a triggered one in the page's list of
    # ten for minutes.
    sev_demo_events_per_minute: float = Field(default=3.0, ge=0, le=6000)
    port: int = Field(default=8000, ge=1, le=65535)
    # Twitch requires validating user tokens at start and hourly; a setting so tests can be fast.
    sev_token_validate_interval_s: float = Field(default=3600.0, gt=0)
    sev_reconcile_interval_s: float = Field(default=600.0, gt=0)
    # How long a streamer nobody favours keeps its subscriptions (someone may come straight back).
    sev_release_grace_s: float = Field(default=3600.0, ge=0)
    sev_session_max_age_s: int = Field(default=14 * 24 * 3600, gt=0)
    # Events older than this are deleted (docs/DEPLOYMENT.md has the storage arithmetic).
    sev_event_retention_days: int = Field(default=30, ge=1)
    sev_log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # Set by resolve(): not a variable, so no environment can switch demo mode on by itself.
    _demo: bool = PrivateAttr(default=False)

    @field_validator(
        "twitch_client_id", "twitch_client_secret", "mongodb_uri", "redis_url", mode="before"
    )
    @classmethod
    def _blank_is_unset(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("twitch_eventsub_secret")
    @classmethod
    def _check_eventsub_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            raw = value.get_secret_value()
            if not (10 <= len(raw) <= 100 and raw.isascii() and raw.isprintable()):
                raise ValueError("TWITCH_EVENTSUB_SECRET must be 10-100 printable ASCII characters")
        return value

    @field_validator("sev_session_secret")
    @classmethod
    def _check_session_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 32:
            raise ValueError("SEV_SESSION_SECRET must be at least 32 characters")
        if value is not None and len(set(value.get_secret_value())) < 10:
            # "aaaa…" is long enough and guessable: a generated secret has dozens of characters.
            raise ValueError("SEV_SESSION_SECRET must be random, not a few repeated characters")
        return value

    @field_validator("sev_token_key")
    @classmethod
    def _check_token_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            try:
                for key in value.get_secret_value().split(","):
                    Fernet(key.strip().encode())
            except (ValueError, TypeError):
                raise ValueError(
                    "SEV_TOKEN_KEY must be one or more comma-separated Fernet keys "
                    "(32 url-safe base64-encoded bytes each)"
                ) from None
        return value

    @field_validator("sev_eventsub_transport", mode="before")
    @classmethod
    def _blank_transport_is_unset(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("twitch_eventsub_ws_url")
    @classmethod
    def _check_ws_url(cls, value: str) -> str:
        return _check_url(value, "TWITCH_EVENTSUB_WS_URL", ("ws", "wss"))

    @field_validator("sev_public_url", "twitch_api_url", "twitch_auth_url")
    @classmethod
    def _check_http_url(cls, value: str, info: ValidationInfo) -> str:
        # The variable is the field's name in capitals (SEV_PUBLIC_URL, ...).
        return _check_url(value, str(info.field_name).upper(), ("http", "https"))

    @field_validator("mongodb_uri")
    @classmethod
    def _check_mongodb_uri(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            from pymongo.errors import InvalidURI
            from pymongo.uri_parser import parse_uri

            raw = value.get_secret_value()
            if not raw.startswith(("mongodb://", "mongodb+srv://")):
                raise ValueError("MONGODB_URI must start with mongodb:// or mongodb+srv://")
            if raw.startswith("mongodb://"):
                try:
                    parse_uri(raw)
                except (InvalidURI, ValueError) as error:
                    raise ValueError(f"MONGODB_URI is not a valid MongoDB URI ({error})") from None
        return value

    @field_validator("redis_url")
    @classmethod
    def _check_redis_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            _check_url(value.get_secret_value(), "REDIS_URL", ("redis", "rediss", "unix"))
        return value

    # -- derived --------------------------------------------------------------------------

    @property
    def demo(self) -> bool:
        """True when SEV runs against its own simulated Twitch (before or after `resolve()`)."""
        return self._demo or self.twitch_client_id is None

    @property
    def public_host(self) -> str:
        """Host name of the public URL: the Twitch embed's `parent`."""
        return urlsplit(self.sev_public_url).hostname or "localhost"

    @property
    def secure_cookies(self) -> bool:
        return self.sev_public_url.startswith("https://")

    @property
    def eventsub_transport(self) -> Literal["webhook", "websocket"]:
        """The EventSub transport: SEV_EVENTSUB_TRANSPORT, or else webhook when Twitch can reach
        SEV's callback (a public https SEV_PUBLIC_URL, or a simulated Twitch on this machine)
        and websocket otherwise (a laptop against real Twitch: no tunnel needed)."""
        if self.sev_eventsub_transport is not None:
            return self.sev_eventsub_transport
        return "webhook" if self.twitch_reaches_callback else "websocket"

    @property
    def twitch_reaches_callback(self) -> bool:
        """Whether Twitch can deliver webhooks to `callback_url`."""
        public_https = self.sev_public_url.startswith("https://") and not is_local_url(
            self.sev_public_url
        )
        return public_https or self.demo or is_local_url(self.twitch_api_url)

    def transport_reason(self) -> str:
        """One line for the start-up log: which transport, and why."""
        transport = self.eventsub_transport
        if self.sev_eventsub_transport is not None:
            why = "SEV_EVENTSUB_TRANSPORT says so"
        elif transport == "websocket":
            why = f"SEV_PUBLIC_URL {self.sev_public_url} is not a public https URL Twitch can reach"
        elif self.twitch_reaches_callback and not self.sev_public_url.startswith("https://"):
            why = "the simulated Twitch on this machine reaches SEV's webhook"
        else:
            why = f"Twitch reaches {self.callback_url}"
        where = self.twitch_eventsub_ws_url if transport == "websocket" else self.callback_url
        return f"EventSub transport: {transport} ({where}): {why}"

    @property
    def callback_url(self) -> str:
        return f"{self.sev_public_url}/webhooks/eventsub"

    @property
    def redirect_url(self) -> str:
        return f"{self.sev_public_url}/auth/callback"

    def secret(self, name: Literal["client", "eventsub", "session", "token_key"]) -> str:
        """The value of a secret that `resolve()` guaranteed to be present."""
        value = {
            "client": self.twitch_client_secret,
            "eventsub": self.twitch_eventsub_secret,
            "session": self.sev_session_secret,
            "token_key": self.sev_token_key,
        }[name]
        if value is None:
            raise SettingsError(f"{name} secret is not set; call resolve() first")
        return value.get_secret_value()

    def resolve(self) -> Settings:
        """Apply the cross-variable rules and demo defaults; return the settings to run with."""
        if self._demo:
            return self
        if self.twitch_client_id is None:
            return self._resolve_demo()
        if self.twitch_client_secret is None:
            raise SettingsError("TWITCH_CLIENT_SECRET is required when TWITCH_CLIENT_ID is set")
        for variable in ("twitch_eventsub_secret", "sev_session_secret", "sev_token_key"):
            if getattr(self, variable) is None:
                raise SettingsError(f"{variable.upper()} is required when running against Twitch")
        return self

    def _resolve_demo(self) -> Settings:
        if self.twitch_client_secret is not None:
            raise SettingsError("TWITCH_CLIENT_ID is required when TWITCH_CLIENT_SECRET is set")
        if not self.sev_demo and not is_local_url(self.sev_public_url):
            raise SettingsError(
                "TWITCH_CLIENT_ID is not set, so SEV would run its simulated Twitch (demo mode) "
                "on SEV_PUBLIC_URL, which is not this machine; set the Twitch credentials, or "
                "SEV_DEMO=1 if a public demo is really meant"
            )
        generated = _demo_secrets(self.sev_data_dir)
        # The client id is public on Twitch too (every authorize URL carries it); the secret is
        # what makes an app token, so a public demo's is known to SEV alone.
        client_secret = generated["twitch_client_secret"] if self.sev_demo else DEMO_CLIENT_SECRET
        updates: dict[str, Any] = {
            "twitch_client_id": DEMO_CLIENT_ID,
            "twitch_client_secret": SecretStr(client_secret),
            "twitch_api_url": f"{self.sev_public_url}{SIMULATOR_MOUNT}/helix",
            "twitch_auth_url": f"{self.sev_public_url}{SIMULATOR_MOUNT}/oauth2",
            "twitch_eventsub_ws_url": _ws_origin(self.sev_public_url) + f"{SIMULATOR_MOUNT}/ws",
        }
        for variable in ("twitch_eventsub_secret", "sev_session_secret", "sev_token_key"):
            if getattr(self, variable) is None:
                updates[variable] = SecretStr(generated[variable])
        resolved = self.model_copy(update=updates)
        resolved._demo = True
        return resolved


def _ws_origin(http_url: str) -> str:
    """The ws(s):// form of an http(s):// URL: the simulated Twitch's WebSocket."""
    return "ws" + http_url.removeprefix("http")


def _demo_secrets(data_dir: Path) -> dict[str, str]:
    """Secrets for demo mode, generated once and kept so sessions survive a restart.

    One missing from the file (written by an older SEV) is generated and added; those present
    are kept, so the sessions and the stored tokens they protect stay valid.
    """
    path = data_dir / "demo-secrets.json"
    stored: dict[str, str] = {}
    try:
        loaded = json.loads(path.read_text())
        if isinstance(loaded, dict):
            stored = {k: v for k, v in loaded.items() if isinstance(v, str)}
    except (OSError, ValueError):
        pass
    makers: dict[str, Callable[[], str]] = {
        "twitch_eventsub_secret": lambda: secrets.token_urlsafe(48)[:64],
        "sev_session_secret": lambda: secrets.token_urlsafe(48),
        "sev_token_key": lambda: Fernet.generate_key().decode(),
        "twitch_client_secret": lambda: secrets.token_urlsafe(32),
    }
    missing = {name: make() for name, make in makers.items() if name not in stored}
    if not missing:
        return stored
    generated = {**stored, **missing}
    data_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    # An older file may have been made readable by others: what it now holds is not.
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w") as file:
        json.dump(generated, file)
    return generated


def load_settings(**overrides: Any) -> Settings:
    """Read, validate and resolve the settings; raise SettingsError with one clear line."""
    try:
        return Settings(**overrides).resolve()
    except ValidationError as error:
        first = error.errors()[0]
        variable = ".".join(str(part) for part in first["loc"]).upper() or "settings"
        message = first["msg"].removeprefix("Value error, ")
        raise SettingsError(f"{variable}: {message}") from None
