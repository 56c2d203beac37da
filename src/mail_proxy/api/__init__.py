"""The HTTP API (FastAPI): ``create_app`` builds it from settings and a runtime."""

from mail_proxy.api.app import create_app

__all__ = ["create_app"]
