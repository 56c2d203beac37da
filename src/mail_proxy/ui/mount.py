"""Adding the dashboard to the API's application, and serving its two static files."""

from __future__ import annotations

from importlib.resources import files

from fastapi import APIRouter, FastAPI, Response

from mail_proxy.ui import instance, login, mailbox, messages, overview, tenants
from mail_proxy.ui.render import security_headers

STATIC = {"app.css": "text/css; charset=utf-8", "app.js": "text/javascript; charset=utf-8"}
_static = APIRouter(include_in_schema=False)


@_static.get("/ui/static/{name}")
async def static(name: str) -> Response:
    """Only the files listed: nothing else of the package can be read this way."""
    media_type = STATIC.get(name)
    if media_type is None:
        return Response("Not found", 404, media_type="text/plain")
    content = (files("mail_proxy.ui") / "static" / name).read_bytes()
    headers = security_headers() | {"Cache-Control": "public, max-age=300"}
    return Response(content, media_type=media_type, headers=headers)


def install(app: FastAPI) -> None:
    for module in (login, overview, messages, tenants, instance, mailbox):
        app.include_router(module.router)
    app.include_router(_static)
