"""The FastAPI application factory.

``create_app(settings)`` opens the runtime (store, workers) in the lifespan and
closes it on shutdown; tests pass a runtime of their own and drive its workers by
hand. Middleware, outermost first: request guard → command log → unhandled errors.
"""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from mail_proxy import __version__
from mail_proxy.api.errors import UnhandledErrorMiddleware, install_error_handlers
from mail_proxy.api.middleware import CommandLogMiddleware, RequestGuardMiddleware
from mail_proxy.api.routes import (
    accounts,
    bounces,
    command_log,
    commands,
    dev,
    downloads,
    messages,
    service,
    tenants,
)
from mail_proxy.api.routes import instance as instance_routes
from mail_proxy.runtime import Runtime
from mail_proxy.schemas import CommandReplayItem, MessageIn
from mail_proxy.settings import Settings

DESCRIPTION = """\
Applications POST e-mail here; the proxy queues it durably, delivers it over SMTP
and reports back to each tenant's own endpoint.

Authenticate with the `X-API-Token` header: the admin token (`GMP_API_TOKEN`) may do
everything, a tenant's API key only acts on its own tenant. Every answer is JSON
with `ok`; failures add `error`.
"""


def create_app(settings: Settings, runtime: Runtime | None = None) -> FastAPI:
    """Build the API. Without ``runtime`` the app opens one and starts its workers."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if runtime is not None:
            app.state.runtime = runtime
            yield
            return
        opened = await Runtime.open(settings)
        opened.start_workers()
        app.state.runtime = opened
        # Everything loaded so far lives as long as the process: kept out of the
        # collector, a full collection walks only request-time objects. Without it
        # one pass during a large batch held the GIL, and so every request, ~300 ms.
        gc.freeze()
        try:
            yield
        finally:
            await opened.close()

    app = FastAPI(
        title="mail-proxy",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    if runtime is not None:
        app.state.runtime = runtime
    for module in (
        service,
        messages,
        commands,
        tenants,
        accounts,
        instance_routes,
        command_log,
        downloads,
        bounces,
    ):
        app.include_router(module.router)
    if settings.dev_sink:
        app.include_router(dev.router)
    # The dashboard uses api.deps: imported once the api package is complete.
    from mail_proxy.ui import install as install_dashboard

    install_dashboard(app)
    install_error_handlers(app)
    app.add_middleware(UnhandledErrorMiddleware)
    app.add_middleware(CommandLogMiddleware, max_body_bytes=settings.command_log_max_body_bytes)
    app.add_middleware(RequestGuardMiddleware, max_bytes=settings.max_body_bytes)
    _describe_referenced(app)
    return app


def _describe_referenced(app: FastAPI) -> None:
    """Put ``MessageIn`` and ``CommandReplayItem`` in the OpenAPI components.

    ``add-messages`` validates each message itself (so one bad message never
    rejects the batch) and the command-log export streams its list, so both only
    refer to these schemas, which FastAPI would not otherwise include.
    """
    default_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = default_openapi()
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            for model in (MessageIn, CommandReplayItem):
                described = model.model_json_schema(
                    by_alias=True, ref_template="#/components/schemas/{model}"
                )
                components.update(described.pop("$defs", {}))
                components[model.__name__] = described
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
