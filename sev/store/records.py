"""What the store keeps, apart from events: users, broadcasters, subscriptions."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

from sev.crypto import TokenCipher


class User(BaseModel):
    """A viewer who logged in with Twitch. Tokens are plaintext here, encrypted in the store."""

    id: str
    login: str
    display_name: str
    profile_image_url: str = ""
    scopes: list[str] = Field(default_factory=list)
    access_token: str | None = Field(default=None, repr=False)
    refresh_token: str | None = Field(default=None, repr=False)
    token_expires_at: datetime | None = None
    # "Connect your channel": a second token with the scopes of SEV's connected event types.
    # It is the streamer's standing grant, kept (and validated) apart from the login token, so
    # logging out does not withdraw it; disconnecting revokes it.
    channel_scopes: list[str] = Field(default_factory=list)
    channel_access_token: str | None = Field(default=None, repr=False)
    channel_refresh_token: str | None = Field(default=None, repr=False)
    channel_token_expires_at: datetime | None = None
    # The viewer's favourite streamer; spelled as stored (the SQLite column, the MongoDB field and
    # its index) and as the /favorite URL, so renaming it would need a data migration.
    favorite_id: str | None = None
    # Set when Twitch refused the user's token: the next page says why the session ended.
    session_ended_reason: str | None = None
    # Bumped whenever the user's sessions end (logout, a token Twitch refused, a disconnect):
    # a cookie carries the epoch it was issued in, so one from before never works again, even
    # after the user logs in anew.
    session_epoch: int = 0

    def ended(self, reason: str) -> dict[str, Any]:
        """The fields that end every session of this user, saying why."""
        return {"session_ended_reason": reason, "session_epoch": self.session_epoch + 1}


class RefusalReason(StrEnum):
    """Why SEV holds back a kind of event; the values are what the store keeps, and each has a
    sentence for the page (sev/streamers.py, HELD_BACK)."""

    # Twitch refused a webhook subscription (sev/eventsub/subscriptions.py).
    LIMIT = "limit"  # three identical subscriptions exist
    COST = "cost"  # the app's max_total_cost is spent
    FORBIDDEN = "forbidden"  # the streamer's permission is missing
    # Twitch revoked, or refused, a subscription in a way asking again would not mend at once.
    VERSION_REMOVED = "version_removed"
    BETA_MAINTENANCE = "beta_maintenance"
    MODERATOR_REMOVED = "moderator_removed"
    # The WebSocket transport's own (sev/eventsub/websocket/): its limits are per viewer's login.
    SOCKET_NO_LOGIN = "socket_no_login"  # nobody logged in favours the channel to carry it
    SOCKET_COST = "socket_cost"  # the carrier's max_total_cost is spent
    SOCKET_LIMIT = "socket_limit"  # connections per login or subscriptions per connection


class Refusal(BaseModel):
    """Why SEV holds back one of a broadcaster's event types, and when it asks Twitch again."""

    key: str  # EventType.key
    version: str
    reason: RefusalReason
    at: datetime
    # None: not on a timer; COST waits for budget, VERSION_REMOVED for another version.
    retry_at: datetime | None = None


class Broadcaster(BaseModel):
    """A streamer someone favoured; `granted_scopes` are what they granted SEV ("connected")."""

    id: str
    login: str
    display_name: str
    profile_image_url: str = ""
    granted_scopes: list[str] = Field(default_factory=list)
    # Since when nobody favours this streamer; its subscriptions are released after a grace period.
    unwanted_since: datetime | None = None
    # Event types Twitch refused (or revoked in a way that asking again would not mend).
    refusals: list[Refusal] = Field(default_factory=list)
    # Twitch revoked with user_removed: the account is gone (or suspended); SEV stops asking
    # until a viewer favours the login again and Helix knows it.
    removed_at: datetime | None = None

    def refusal(self, key: str) -> Refusal | None:
        """The refusal of one catalogue entry, if any."""
        return next((r for r in self.refusals if r.key == key), None)


class SubscriptionRecord(BaseModel):
    """An EventSub subscription SEV made (Twitch's id, type, version, condition, status)."""

    id: str
    broadcaster_id: str
    type: str
    version: str
    condition: dict[str, str]
    status: str
    created_at: str = ""
    # A WebSocket subscription: the user whose token made it, and the session it lives on
    # (both "" for a webhook subscription, made with the app token).
    carrier_id: str = ""
    session_id: str = ""


class EventSubState(BaseModel):
    """App-wide EventSub facts: the callback URLs SEV has used, and Twitch's last cost figures."""

    # Every `{SEV_PUBLIC_URL}/webhooks/eventsub` SEV subscribed with: reconcile deletes the
    # subscriptions of earlier ones, which would otherwise count against the budget forever.
    callbacks: list[str] = Field(default_factory=list)
    total: int | None = None
    total_cost: int | None = None
    max_total_cost: int | None = None
    checked_at: datetime | None = None
    # App-wide types Twitch refused (user.authorization.revoke).
    refusals: list[Refusal] = Field(default_factory=list)


_TOKEN_FIELDS = ("access_token", "refresh_token", "channel_access_token", "channel_refresh_token")


def user_to_doc(user: User, cipher: TokenCipher) -> dict[str, Any]:
    """A user as stored: every token encrypted."""
    doc = user.model_dump(mode="json", exclude=set(_TOKEN_FIELDS))
    for field in _TOKEN_FIELDS:
        value = getattr(user, field)
        doc[f"{field}_enc"] = cipher.encrypt(value) if value else None
    return doc


def user_from_doc(doc: dict[str, Any], cipher: TokenCipher) -> User:
    """A stored user with its tokens decrypted (None where the key is gone)."""
    fields = {k: v for k, v in doc.items() if k in User.model_fields}
    for field in _TOKEN_FIELDS:
        encrypted = doc.get(f"{field}_enc")
        fields[field] = cipher.decrypt(encrypted) if encrypted else None
    return User.model_validate(fields)
