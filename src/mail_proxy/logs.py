"""Logging set-up: structlog over the standard library, console or JSON lines.

Events are snake_case names with bound fields; bodies and secrets are never
passed to a logger by our code. Libraries are another matter: at DEBUG, aiosqlite
logs every statement with its parameters (message bodies), aiosmtpd and aiosmtplib
log the SMTP dialogue, httpx logs URLs. Those loggers are held at WARNING whatever
``GMP_LOG_LEVEL`` says.
"""

from __future__ import annotations

import logging
import sys

import structlog

_QUIET_LIBRARIES = (
    "aiosqlite",
    "sqlalchemy",
    "psycopg",
    "aiosmtplib",
    "mail.log",  # aiosmtpd (the dev sink)
    "httpx",
    "httpcore",
    "hpack",
    "asyncio",
)


def configure(level: str = "INFO", fmt: str = "console") -> None:
    """Route structlog and stdlib logging (uvicorn's too) through one renderer."""
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in _QUIET_LIBRARIES:
        # Even at DEBUG: these would log SQL parameters, SMTP DATA or request URLs
        # with credentials, i.e. message bodies and secrets.
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
