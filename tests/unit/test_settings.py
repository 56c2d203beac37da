"""Settings read from the environment the way docs/configuration.md says."""

from __future__ import annotations

from pathlib import Path

import pytest

from mail_proxy.settings import Settings


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("60,300,900", [60, 300, 900]), (" 5 , 10 ", [5, 10]), ("[1, 2]", [1, 2]), ("30", [30])],
)
def test_retry_delays_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, raw: str, expected: list[int]
) -> None:
    monkeypatch.setenv("GMP_RETRY_DELAYS", raw)
    assert Settings().retry_delays == expected


def test_private_targets_allowlist_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GMP_PRIVATE_TARGETS_ALLOWLIST", "10.0.0.0/8, smtp.internal")
    monkeypatch.setenv("GMP_ALLOW_PRIVATE_TARGETS", "false")
    settings = Settings()
    assert settings.private_targets_allowlist == ["10.0.0.0/8", "smtp.internal"]
    assert settings.allow_private_targets is False


def test_attachment_base_dirs_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """``:`` as in PATH, or commas; relative folders made absolute, as submitted
    paths are compared with them."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GMP_ATTACHMENT_BASE_DIR", "/srv/files/:/data/out, outbox")
    assert Settings().attachment_base_dir == ["/srv/files", "/data/out", str(tmp_path / "outbox")]
