"""POST /webhooks/eventsub: verify, then receive (sev/eventsub/receiver.py), then acknowledge."""

from __future__ import annotations

import contextlib
import logging

from fastapi import APIRouter, Request, Response
from fastapi.responses import PlainTextResponse

from sev.clock import now_utc
from sev.eventsub.protocol import MAX_BODY_BYTES, MessageType, RejectedMessage, verify
from sev.store import StoreUnavailable
from sev.web.deps import ReceiverDep, SettingsDep, SubscriptionsDep

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
    subscriptions: SubscriptionsDep,
    receiver: ReceiverDep,
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
        await receiver.receive(message, received)
    except StoreUnavailable:
        # Not stored, so not acknowledged: Twitch retries with the same message id.
        log.warning("store unavailable; answered 503 to EventSub message %s", message.message_id)
        return PlainTextResponse("store unavailable, retry later", status_code=503)
    return Response(status_code=204)
