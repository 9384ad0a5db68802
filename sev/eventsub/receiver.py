"""What SEV does with a genuine EventSub message, whichever transport brought it.

A webhook proves a message genuine by its signature; a WebSocket message by the TLS connection
SEV opened to Twitch. From there on both take this one path: revocations and authorization
revokes deduplicated by message id and acted on, notifications built into an Event and handed
to the ingest worker (which deduplicates them by message id, numbers, stores and publishes
them). `StoreUnavailable` propagates: the webhook answers 503 so that Twitch retries, the
WebSocket reader holds the message and tries again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sev.clock import format_timestamp
from sev.config import Settings
from sev.events import AUTHORIZATION_REVOKE, broadcaster_id_of, build_event, display_of
from sev.eventsub.ingest import Ingestor, Unstorable
from sev.eventsub.protocol import Message, MessageType
from sev.eventsub.subscriptions import Subscriptions
from sev.store import Store
from sev.tokens import SessionsEnded, end_authorization

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Receiver:
    """The parts a message reaches."""

    settings: Settings
    store: Store
    ingestor: Ingestor
    subscriptions: Subscriptions
    sessions_ended: SessionsEnded

    async def receive(self, message: Message, received: datetime) -> None:
        """Act on a notification or revocation (raises StoreUnavailable)."""
        event_data = message.event or {}
        revocation = message.message_type is MessageType.REVOCATION
        if revocation or message.subscription_type == AUTHORIZATION_REVOKE.type:
            await self._once(message, received, revocation)
            return
        if message.message_type is not MessageType.NOTIFICATION:
            return
        if not display_of(message.subscription_type).keeps(event_data):
            # Another subscription carries the same happening (a bits.use cheer is a cheer).
            log.debug("notification %s is shown by another type; not stored", message.message_id)
            return
        broadcaster_id = broadcaster_id_of(message.condition) or broadcaster_id_of(event_data)
        if broadcaster_id is None:
            log.warning(
                "notification %s names no broadcaster; acknowledged, not stored", message.message_id
            )
            return
        event = build_event(
            message_id=message.message_id,
            event_type=message.subscription_type,
            version=message.subscription_version,
            broadcaster_id=broadcaster_id,
            data=event_data,
            message_timestamp=message.timestamp,
            received_at=format_timestamp(received),
        )
        try:
            await self.ingestor.ingest(event)
        except Unstorable:
            # Logged by the ingest worker. Acknowledged: a resend would fail the same way (and
            # Twitch would end up revoking the subscription).
            return

    async def _once(self, message: Message, received: datetime, revocation: bool) -> None:
        # Not events, so not deduplicated by the events' unique message id: by the ids noted
        # once handled. (Copies that race each other are idempotent besides.)
        if await self.store.seen_message(message.message_id):
            log.info("message %s handled before; acknowledged again", message.message_id)
            return
        if revocation:
            await self.subscriptions.revoked(message.subscription)
        else:
            # A user disconnected SEV on Twitch: not a channel's event, an end to their grants.
            event_data = message.event or {}
            user_id = event_data.get("user_id")
            if event_data.get("client_id") == self.settings.twitch_client_id and isinstance(
                user_id, str
            ):
                await end_authorization(
                    self.store, self.subscriptions, self.sessions_ended, user_id
                )
        await self.store.note_message(message.message_id, received)
