"""Signed webhook deliveries: one ordered lane per subscription, retries, challenge checks."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import random
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import httpx

from .config import Faults, SimulatorConfig
from .subscriptions import SimSubscription
from .timestamps import rfc3339_nano

log = logging.getLogger(__name__)

SimMessageType = Literal["notification", "webhook_callback_verification", "revocation"]


def sign_message(secret: str, message_id: str, timestamp: str, body: bytes) -> str:
    """Twitch's signature: `sha256=` + hex HMAC-SHA256 over message id + timestamp + raw body.

    Written again here rather than shared with SEV's check: a mistake in one shows up as a
    failed delivery against the other.
    """
    mac = hmac.new(secret.encode(), message_id.encode() + timestamp.encode() + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def encode(payload: dict[str, Any]) -> bytes:
    """Compact JSON as Go's encoder writes it (Twitch's): <, > and & escaped inside strings."""
    text = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
    for raw, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026")):
        text = text.replace(raw, escaped)
    return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029").encode()


@dataclass(eq=False)
class SimMessage:
    """One message to one subscription's callback; resends keep its id."""

    id: str
    type: SimMessageType
    subscription: SimSubscription
    body: bytes
    challenge: str | None = None
    # Attempts made so far: a message saved mid-retry goes on from there after a restart.
    retries: int = 0


@dataclass
class Attempt:
    """A record of one HTTP attempt, for tests and the control endpoint."""

    message_id: str
    message_type: SimMessageType
    subscription_id: str
    retry: int
    status_code: int | None
    error: str | None = None


def envelope(
    sub: SimSubscription,
    type_: SimMessageType,
    *,
    event: dict[str, Any] | None = None,
    challenge: str | None = None,
) -> SimMessage:
    """Build a message: the subscription as it is now, plus the event or the challenge."""
    payload: dict[str, Any] = {"subscription": sub.public()}
    if challenge is not None:
        payload = {"challenge": challenge, **payload}
    if event is not None:
        payload["event"] = event
    return SimMessage(str(uuid.uuid4()), type_, sub, encode(payload), challenge)


def _is_plain_text(content_type: str) -> bool:
    return content_type.split(";", 1)[0].strip().lower() == "text/plain"


class Deliveries:
    """Queues messages per subscription and sends them from worker tasks, never from requests.

    A message stays in its lane until it is finished (delivered, given up on, or its
    subscription gone), so what is unfinished when the simulator stops can be saved and sent
    after a restart.
    """

    def __init__(
        self,
        config: SimulatorConfig,
        faults: Faults,
        subscriptions: Mapping[str, SimSubscription],
        rng: random.Random,
        *,
        on_change: Callable[[], None] = lambda: None,
    ) -> None:
        self._config = config
        self._faults = faults
        self._subscriptions = subscriptions
        self._rng = rng
        self._on_change = on_change
        self._lanes: dict[str, deque[SimMessage]] = {}
        self._workers: dict[str, asyncio.Task[None]] = {}
        self._http: httpx.AsyncClient | None = None
        self._limit = asyncio.Semaphore(config.max_concurrent_deliveries)
        self.attempts: deque[Attempt] = deque(maxlen=2000)

    def start(self, http: httpx.AsyncClient) -> None:
        """Begin sending, including anything queued before the start."""
        self._http = http
        for subscription_id in list(self._lanes):
            self._wake(subscription_id)

    async def stop(self) -> None:
        """Stop every worker; unfinished messages stay queued (`unfinished`)."""
        self._http = None
        workers = list(self._workers.values())
        for task in workers:
            task.cancel()
        for task in workers:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def send(self, message: SimMessage) -> None:
        """Queue a message behind the others of its subscription."""
        subscription_id = message.subscription.id
        self._lanes.setdefault(subscription_id, deque()).append(message)
        self._on_change()
        self._wake(subscription_id)

    def resume(self, messages: list[SimMessage]) -> None:
        """Queue messages saved unfinished by an earlier run, in their order."""
        for message in messages:
            self._lanes.setdefault(message.subscription.id, deque()).append(message)
            self._wake(message.subscription.id)

    def unfinished(self) -> list[SimMessage]:
        """Every message not yet finished (the one being sent included), lane by lane."""
        return [message for lane in self._lanes.values() for message in lane]

    def pending(self) -> int:
        """Messages queued and not yet finished."""
        return sum(len(lane) for lane in self._lanes.values())

    def _wake(self, subscription_id: str) -> None:
        if self._http is not None and subscription_id not in self._workers:
            task = asyncio.create_task(self._drain(subscription_id))
            self._workers[subscription_id] = task

    async def _drain(self, subscription_id: str) -> None:
        lane = self._lanes[subscription_id]
        try:
            while lane:
                if self._faults.out_of_order and len(lane) > 1:
                    batch = list(lane)
                    shuffled = self._rng.sample(batch, len(batch))
                    # A shuffle that changes nothing would not exercise out-of-order handling.
                    batch = shuffled if shuffled != batch else batch[::-1]
                else:
                    batch = [lane[0]]
                for message in batch:
                    try:
                        await self._deliver(message)
                    except Exception:
                        log.exception("delivery of message %s failed unexpectedly", message.id)
                    # Finished (a cancelled delivery leaves it queued, to be saved).
                    lane.remove(message)
                    self._on_change()
        finally:
            self._workers.pop(subscription_id, None)
            if not lane:
                self._lanes.pop(subscription_id, None)

    def _current(self, sub: SimSubscription) -> bool:
        return self._subscriptions.get(sub.id) is sub

    async def _deliver(self, message: SimMessage) -> None:
        if self._faults.delay_s:
            await asyncio.sleep(self._faults.delay_s)
        sub = message.subscription
        if not self._current(sub):
            return
        if message.type == "webhook_callback_verification":
            if sub.status == "webhook_callback_verification_pending":
                response = await self._post(message, 0)
                sub.status = (
                    "enabled"
                    if response is not None
                    and response.is_success
                    and _is_plain_text(response.headers.get("content-type", ""))
                    and response.text == message.challenge
                    else "webhook_callback_verification_failed"
                )
        elif message.type == "revocation":
            await self._post(message, 0)
        else:
            await self._notify(message)

    async def _notify(self, message: SimMessage) -> None:
        sub = message.subscription
        delays = (0.0, *self._config.retry_delays_s)
        # A message saved mid-retry goes on with its next attempt, after that attempt's delay.
        for retry in range(message.retries, len(delays)):
            if delays[retry]:
                await asyncio.sleep(delays[retry])
            if not self._current(sub) or sub.status != "enabled":
                return
            response = await self._post(message, retry)
            if response is not None and response.is_success:
                if self._faults.duplicate:
                    await self._post(message, 0)
                return
            message.retries = retry + 1
            self._on_change()
        sub.status = "notification_failures_exceeded"
        await self._post(envelope(sub, "revocation"), 0)

    async def _post(self, message: SimMessage, retry: int) -> httpx.Response | None:
        http = self._http
        if http is None:
            return None
        sub = message.subscription
        allowed = self._config.callbacks
        if allowed and sub.callback not in allowed:
            # A subscription saved under another configuration (SEV on another port): a demo
            # posts to its own webhook only. It fails as a dead callback would.
            self.attempts.append(
                Attempt(message.id, message.type, sub.id, retry, None, "callback not allowed")
            )
            return None
        timestamp = rfc3339_nano()
        secret = sub.secret + "-wrong" if self._faults.bad_signature else sub.secret
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "Twitch-Eventsub-Webhooks/1.0 (simulated)",
            "Twitch-Eventsub-Message-Id": message.id,
            "Twitch-Eventsub-Message-Retry": str(retry),
            "Twitch-Eventsub-Message-Type": message.type,
            "Twitch-Eventsub-Message-Signature": sign_message(
                secret, message.id, timestamp, message.body
            ),
            "Twitch-Eventsub-Message-Timestamp": timestamp,
            "Twitch-Eventsub-Subscription-Type": sub.type,
            "Twitch-Eventsub-Subscription-Version": sub.version,
        }
        timeout = self._config.delivery_timeout_s
        response: httpx.Response | None = None
        error: str | None = None
        async with self._limit:
            try:
                async with asyncio.timeout(timeout):
                    response = await http.post(
                        sub.callback,
                        content=message.body,
                        headers=headers,
                        timeout=timeout,
                        follow_redirects=False,
                    )
            except (httpx.HTTPError, TimeoutError) as exc:
                error = type(exc).__name__
        status = response.status_code if response is not None else None
        self.attempts.append(Attempt(message.id, message.type, sub.id, retry, status, error))
        log.debug("%s %s retry %d -> %s", message.type, message.id, retry, status or error)
        return response
