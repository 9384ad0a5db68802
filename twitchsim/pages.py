"""The simulated Twitch's HTML: the consent page and its error page (self-contained)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import jinja2

from .directory import Account

# Only inline styles and data: pictures: the page makes no outside request.
# frame-ancestors: the consent page is never shown inside another site's frame (clickjacking).
CSP = (
    "default-src 'none'; img-src data:; style-src 'unsafe-inline'; base-uri 'none'; "
    "frame-ancestors 'none'"
)

_env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)

_AUTHORIZE = _env.from_string("""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Authorize {{ app_name }} · Simulated Twitch</title>
<style>
body{font-family:system-ui,sans-serif;background:#0e0e10;color:#efeff1;margin:0;padding:2rem}
main{max-width:34rem;margin:auto;background:#18181b;border-radius:8px;padding:1.5rem 2rem}
.sim{background:#f5a623;color:#000;padding:.4rem .8rem;border-radius:4px;font-weight:600}
fieldset{border:0;padding:0;margin:1rem 0}
label{display:flex;align-items:center;gap:.75rem;padding:.4rem;border-radius:6px;cursor:pointer}
label:hover{background:#26262c}
img{width:40px;height:40px;border-radius:50%}
small{color:#adadb8}
.buttons{display:flex;gap:1rem;justify-content:flex-end}
button{font-size:1rem;padding:.5rem 1.2rem;border-radius:4px;border:0;cursor:pointer}
button[value=authorize]{background:#9146ff;color:#fff}
</style>
</head>
<body>
<main>
<p class="sim">Simulated Twitch — demo accounts only, no real Twitch login.</p>
<h1>Authorize {{ app_name }}</h1>
<p><small>Client id <code>{{ client_id }}</code> would like to:</small></p>
<ul id="scopes">
{% for scope in scopes %}<li><code>{{ scope }}</code></li>
{% else %}<li>Know who you are</li>{% endfor %}
</ul>
<form method="post" action="authorize">
{% for name, value in hidden.items() %}<input type="hidden" name="{{ name }}" value="{{ value }}">
{% endfor %}
<fieldset id="accounts">
<legend>Log in as</legend>
{% for account in accounts %}
{% set checked = account.login == last_login if last_login else loop.first %}
<label data-login="{{ account.login }}">
<input type="radio" name="login" value="{{ account.login }}"{% if checked %} checked{% endif %}>
<img src="{{ account.profile_image_url }}" alt="">
<span>{{ account.display_name }}
<small>{{ "streamer" if account.streamer else "viewer" }} · id {{ account.id }}
{%- if account.login == last_login %} · last used on this browser{% endif %}</small></span>
</label>
{% endfor %}
</fieldset>
<div class="buttons">
<button type="submit" name="decision" value="cancel">Cancel</button>
<button type="submit" name="decision" value="authorize">Authorize</button>
</div>
</form>
</main>
</body>
</html>
""")

_ERROR = _env.from_string("""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Error · Simulated Twitch</title></head>
<body><h1>{{ title }}</h1><p>{{ message }}</p></body></html>
""")


def authorize_page(
    *,
    client_id: str,
    scopes: Iterable[str],
    accounts: Iterable[Account],
    hidden: Mapping[str, str],
    last_login: str | None = None,
) -> str:
    """The consent page: pick a demo account (the one this browser last used is checked, else
    the first), then Authorize or Cancel."""
    return _AUTHORIZE.render(
        app_name="SEV (demo app)",
        client_id=client_id,
        scopes=list(scopes),
        accounts=list(accounts),
        hidden=dict(hidden),
        last_login=last_login,
    )


def error_page(title: str, message: str) -> str:
    """A plain error page, for requests that must not be redirected anywhere."""
    return _ERROR.render(title=title, message=message)
