"""`/profile-images/{id}.svg`: the demo accounts' pictures, served as Twitch's image CDN serves
real ones, so that a page shows them by address (SEV's policy allows no inline images)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

if TYPE_CHECKING:
    from .core import Simulator

PROFILE_IMAGES = "/profile-images"
_NAME = re.compile(r"^([0-9]{1,20})\.svg$")


class ImageRoutes:
    """The handler, bound to one simulator's directory."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim

    def routes(self) -> list[Route]:
        """Routes relative to the `/profile-images` mount."""
        return [Route("/{name}", self.read_picture, methods=["GET"])]

    async def read_picture(self, request: Request) -> Response:
        """One account's picture; 404 for anything else."""
        match = _NAME.match(request.path_params["name"])
        account = self.sim.directory.by_id(match.group(1)) if match else None
        if account is None:
            return PlainTextResponse("no such picture", status_code=404)
        return Response(
            account.picture_svg(),
            media_type="image/svg+xml",
            headers={
                "Cache-Control": "public, max-age=3600",
                # Opened on its own, the picture is a document: it may run and load nothing.
                "Content-Security-Policy": "default-src 'none'",
                "X-Content-Type-Options": "nosniff",
            },
        )
