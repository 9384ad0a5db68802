"""What browsers and Twitch reach over HTTP: pages, login, the events API and the webhook.

`pages.py` (home, favourite, streamer page, events API), `auth.py` (Twitch login, logout,
connect your channel), `webhook.py` (POST /webhooks/eventsub), `deps.py` (the running services
as FastAPI dependencies), `templating.py` and `security.py` (Jinja with SEV's globals, the page
policy and headers). The top layer below the app: may import everything but `sev.app`.
"""
