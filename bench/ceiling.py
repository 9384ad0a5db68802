"""The ceiling for ingest: a FastAPI endpoint that only reads and verifies an EventSub request.

Same framework, same uvicorn settings, same signature check as SEV's webhook; no dedup, no store,
no publish. SEV's ingest rate is reported as a fraction of this one's.
"""

from __future__ import annotations

import os

from fastapi import FastAPI, Request, Response
from fastapi.responses import PlainTextResponse

from sev.clock import now_utc
from sev.eventsub.protocol import RejectedMessage, verify

SECRET = os.environ.get("TWITCH_EVENTSUB_SECRET", "")
app = FastAPI(docs_url=None, redoc_url=None)


@app.post("/webhooks/eventsub")
async def receive_eventsub(request: Request) -> Response:
    """Verify, then acknowledge."""
    body = await request.body()
    try:
        verify(request.headers, body, SECRET, now_utc())
    except RejectedMessage as rejected:
        return PlainTextResponse(rejected.reason, status_code=rejected.status)
    return Response(status_code=204)


@app.get("/healthz")
async def read_health() -> dict[str, str]:
    """Ready."""
    return {"status": "ok"}
