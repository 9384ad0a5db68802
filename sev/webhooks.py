"""POST /webhooks/eventsub: verify, deduplicate, store, acknowledge, publish."""

from __future__ import annotations

import contextlib
import logging

from fastapi import APIRouter, Request, Response
from fastapi.responses import PlainTextResponse

from sev.clock import now_utc
from sev.deps import IngestorDep, LiveDep, SettingsDep, StoreDep, SubscriptionsDep
from sev.events import AUTHORIZATION_REVOKE, broadcaster_id_of, build_event, display_of
from sev.eventsub import (
    MAX_BODY_BYTES,
    MessageType,
    RejectedMessage,
    format_timestamp,
    verify,
)
from sev.ingest import Unstorable
from sev.store import StoreUnavailable
from sev.tokens import end_authorization

log = logging.getLogger(__name__)
router = APIRouter()


class _TooLarge(Exception):
    pass


async def _read_body(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > MAX_BODY_BYTES):
        raise _TooLarge
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            raise _TooLarge
    return bytes(body)


@router.post("/webhooks/eventsub", include_in_schema=False)
async def receive_eventsub(
    request: Request,
    settings: SettingsDep,
    store: StoreDep,
    ingestor: IngestorDep,
    subscriptions: SubscriptionsDep,
    live: LiveDep,
) -> Response:
    """Twitch EventSub's webhook callback."""
    try:
        body = await _read_body(request)
    except _TooLarge:
        return PlainTextResponse("body larger than 1 MiB", status_code=413)
    received = now_utc()
    try:
        message = verify(request.headers, body, settings.secret("eventsub"), received)
    except RejectedMessage as rejected:
        log.info("refused an EventSub request: %s", rejected.reason)
        return PlainTextResponse(rejected.reason, status_code=rejected.status)

    if message.message_type is MessageType.VERIFICATION:
        # The challenge is answered even with the store down: the subscription is genuine (it
        # is signed with our secret) and its status is re-read by the next reconcile.
        with contextlib.suppress(StoreUnavailable):
            await subscriptions.verified(message.subscription)
        # Twitch wants the challenge back as the whole body, raw, in text/plain.
        return PlainTextResponse(message.challenge or "", status_code=200)

    try:
        event_data = message.event or {}
        revocation = message.message_type is MessageType.REVOCATION
        if revocation or message.subscription_type == AUTHORIZATION_REVOKE.type:
            # Not events, so not deduplicated by the events' unique message id: by the ids
            # noted once handled. (Copies that race each other are idempotent besides.)
            if await store.seen_message(message.message_id):
                log.info("message %s handled before; acknowledged again", message.message_id)
                return Response(status_code=204)
            if revocation:
                await subscriptions.revoked(message.subscription)
            else:
                # A user disconnected SEV on Twitch: not a channel's event, an end to their
                # grants.
                user_id = event_data.get("user_id")
                if event_data.get("client_id") == settings.twitch_client_id and isinstance(
                    user_id, str
                ):
                    await end_authorization(store, subscriptions, live.end_sessions, user_id)
            await store.note_message(message.message_id, received)
            return Response(status_code=204)
        if not display_of(message.subscription_type).keeps(event_data):
            # Another subscription carries the same happening (a bits.use cheer is a cheer).
            log.debug("notification %s is shown by another type; not stored", message.message_id)
            return Response(status_code=204)
        broadcaster_id = broadcaster_id_of(message.condition) or broadcaster_id_of(event_data)
        if broadcaster_id is None:
            log.warning(
                "notification %s names no broadcaster; acknowledged, not stored", message.message_id
            )
            return Response(status_code=204)
        event = build_event(
            message_id=message.message_id,
            event_type=message.subscription_type,
            version=message.subscription_version,
            broadcaster_id=broadcaster_id,
            data=event_data,
            message_timestamp=message.timestamp,
            received_at=format_timestamp(received),
        )
        await ingestor.ingest(event)
    except Unstorable:
        # Logged by the ingest worker. A 2xx, because a resend would fail the same way and
        # Twitch would end up revoking the subscription.
        return Response(status_code=204)
    except StoreUnavailable:
        # Not stored, so not acknowledged: Twitch retries with the same message id.
        log.warning("store unavailable; answered 503 to EventSub message %s", message.message_id)
        return PlainTextResponse("store unavailable, retry later", status_code=503)
    return Response(status_code=204)
