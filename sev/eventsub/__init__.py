"""Twitch EventSub: how events reach SEV, and the subscriptions that make Twitch send them.

`protocol.py` is the pure wire protocol (signatures, timestamps, message parsing);
`receiver.py` takes a verified message (from the webhook route in `sev.web.webhook` or a
WebSocket) to `ingest.py`, which stores events in batches and publishes them in seq order;
`subscriptions.py` creates, reconciles and releases the webhook subscriptions; `websocket/`
carries subscriptions over EventSub WebSockets instead. May import the events, the store, the
Twitch client, the tokens and config; never the web routes or the live path.
"""
