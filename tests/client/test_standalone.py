"""The SDK works where none of the server's packages is installed (``pip install mail-proxy``)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SERVER_PACKAGES = [
    "fastapi",
    "starlette",
    "pydantic_settings",
    "email_validator",
    "uvicorn",
    "sqlalchemy",
    "aiosqlite",
    "psycopg",
    "alembic",
    "aiosmtplib",
    "aiosmtpd",
    "prometheus_client",
    "click",
    "structlog",
    "cryptography",
]

SCRIPT = f"""
import importlib.abc, sys

class Absent(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {SERVER_PACKAGES!r}:
            raise ImportError(f"{{name}} is not installed")
        return None

sys.meta_path.insert(0, Absent())
from mail_proxy.client import MailProxyClient, ServerUnavailable
with MailProxyClient("http://127.0.0.1:9", "t", retries=0) as proxy:
    try:
        proxy.health()
    except ServerUnavailable:
        print("ok")
"""


def test_the_sdk_imports_and_runs_without_the_server_packages() -> None:
    src = Path(__file__).parents[2] / "src"
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PYTHONPATH": str(src)},
        check=False,
    )
    assert done.stdout.strip() == "ok", done.stderr
