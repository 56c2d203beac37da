"""Rendering pages: the Jinja2 environment, its filters and the security headers.

Autoescape is on for every template, so whatever a tenant or a message put in a
field is shown as text. Every answer of ``/ui`` carries a Content-Security-Policy
allowing only this origin's own stylesheet and script (no inline script can run),
and is neither cached nor framed by another site.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import jinja2
from fastapi import Request
from fastapi.responses import HTMLResponse

from mail_proxy import __version__

PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-src 'self'; form-action 'self'; base-uri 'none'; "
    "frame-ancestors 'none'"
)
#: A message body: no script, no remote image, inline styles only (mail is styled so).
BODY_CSP = (
    "default-src 'none'; img-src data: cid:; style-src 'unsafe-inline'; "
    "frame-ancestors 'self'; sandbox"
)

_env = jinja2.Environment(
    loader=jinja2.PackageLoader("mail_proxy.ui", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def security_headers(csp: str = PAGE_CSP) -> dict[str, str]:
    return {
        "Content-Security-Policy": csp,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "same-origin",
        "X-Frame-Options": "DENY" if "frame-ancestors 'none'" in csp else "SAMEORIGIN",
        "Cache-Control": "no-store",
    }


def page(
    request: Request, template: str, context: Mapping[str, Any], status_code: int = 200
) -> HTMLResponse:
    """``template`` rendered with ``context`` plus what every page needs."""
    values = {
        "request_path": request.url.path,
        "version": __version__,
        "user": getattr(request.state, "ui_user", None),
        "dev_sink": request.app.state.runtime.settings.dev_sink,
        **context,
    }
    html = _env.get_template(template).render(values)
    return HTMLResponse(html, status_code=status_code, headers=security_headers())


def when(ts: float | None) -> str:
    """A Unix time as UTC, to the second."""
    if ts is None:
        return "—"
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S")


def duration(seconds: float | None) -> str:
    """``3 h 12 min``: an age a person reads at a glance."""
    if seconds is None:
        return "—"
    seconds = int(seconds)
    for size, unit in ((86400, "d"), (3600, "h"), (60, "min")):
        if seconds >= size:
            big, rest = divmod(seconds, size)
            smaller = {"d": (3600, "h"), "h": (60, "min"), "min": (1, "s")}[unit]
            small = rest // smaller[0]
            return f"{big} {unit} {small} {smaller[1]}" if small else f"{big} {unit}"
    return f"{seconds} s"


def addresses(value: Any) -> str:
    """``to``/``cc``/``bcc`` as submitted: a string or a list of them."""
    if value is None:
        return ""
    if isinstance(value, list):
        return ", ".join(str(item) for item in value)
    return str(value)


_env.filters.update(when=when, duration=duration, addresses=addresses)
