"""The dashboard: server-rendered pages at ``/ui`` over the same services as the API.

Jinja2 templates with autoescape, one stylesheet and one small script of our own
(no build step, nothing fetched from elsewhere). A login with the admin token or a
tenant key opens a session (``services.sessions``); a tenant sees and changes only
its own tenant. ``install`` adds the pages to the API's application.
"""

from mail_proxy.ui.mount import install

__all__ = ["install"]
