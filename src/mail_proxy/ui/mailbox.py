"""The development mailbox (``serve --dev-sink``, admin): what the sink received.

Messages are found by their Message-ID header (every message the proxy sends has
one); the body is served like a queued message's, in a sandboxed frame.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from mail_proxy.api.deps import RuntimeDep
from mail_proxy.errors import Forbidden, NotFound
from mail_proxy.runtime import Runtime
from mail_proxy.smtp.sink import ReceivedMessage
from mail_proxy.ui.messages import body_response
from mail_proxy.ui.render import page
from mail_proxy.ui.routing import UiRoute
from mail_proxy.ui.session import UiUser, UserDep

router = APIRouter(route_class=UiRoute, include_in_schema=False)
SHOWN = 200


@router.get("/ui/mailbox")
async def mailbox(
    request: Request, user: UserDep, runtime: RuntimeDep, message_id: str = ""
) -> Response:
    received = _received(user, runtime)
    chosen = _find(received, message_id) if message_id else None
    context = {
        "title": "Dev mailbox",
        "received": received[:SHOWN],
        "chosen": chosen,
        "sink": runtime.dev_sink,
    }
    return page(request, "mailbox.html", context)


@router.get("/ui/mailbox/body")
async def mailbox_body(user: UserDep, runtime: RuntimeDep, message_id: str) -> Response:
    found = _find(_received(user, runtime), message_id)
    return body_response(found.html or found.body, found.html is not None)


def _received(user: UiUser, runtime: Runtime) -> list[ReceivedMessage]:
    if not user.is_admin:
        raise Forbidden("The dev mailbox is the admin's")
    if runtime.dev_sink is None:
        raise NotFound("No dev sink: start the proxy with `mail-proxy serve --dev-sink`")
    return list(reversed(runtime.dev_sink.messages))


def _find(received: list[ReceivedMessage], message_id: str) -> ReceivedMessage:
    for message in received:
        if message.headers.get("Message-ID") == message_id:
            return message
    raise NotFound("That message is no longer in the sink (it keeps the last 1,000)")
