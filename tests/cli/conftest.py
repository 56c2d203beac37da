"""The ``mail-proxy`` command run as a user runs it: a subprocess, with ``GMP_HOME``
in a temporary folder so that no test touches the real ``~/.mail-proxy``.

- ``cli(*args, input=None)``: run the command, return the finished process (text).
- ``running``: an instance started in the background on a free port, stopped (or
  killed) after the test; its accounts may point at loopback SMTP servers.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from mail_proxy.testing import free_port

Cli = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def gmp_home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def cli_env(gmp_home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GMP_")}
    # The test SMTP servers listen on loopback, which tenants may not use by default.
    return env | {"GMP_HOME": str(gmp_home), "GMP_ALLOW_PRIVATE_TARGETS": "true"}


@pytest.fixture
def cli(cli_env: dict[str, str]) -> Cli:
    def run(*args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "mail_proxy", *args],
            env=cli_env,
            input=input,
            capture_output=True,
            text=True,
            timeout=90,
        )

    return run


def parsed(done: subprocess.CompletedProcess[str]) -> Any:
    """The JSON a ``--json`` command printed, after checking that it succeeded."""
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.fixture
def running(cli: Cli) -> Iterator[str]:
    """Instance ``web``, started in the background, stopped after the test."""
    started = cli("start", "web", "--background", "--port", str(free_port()))
    assert started.returncode == 0, started.stderr
    try:
        yield "web"
    finally:
        if cli("stop", "web").returncode != 0:
            cli("stop", "web", "--force")
