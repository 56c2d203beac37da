"""The configuration reference lists every setting the proxy reads."""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices

from mail_proxy.settings import Settings

DOC = Path(__file__).parents[2] / "docs" / "configuration.md"


def _env_names(name: str) -> list[str]:
    alias = Settings.model_fields[name].validation_alias
    if isinstance(alias, AliasChoices):
        return [str(choice) for choice in alias.choices if str(choice).startswith("GMP_")]
    return [f"GMP_{name.upper()}"]


def test_every_setting_is_documented() -> None:
    """Each GMP_* variable (aliases included) appears in docs/configuration.md."""
    text = DOC.read_text()
    missing = [env for name in Settings.model_fields for env in _env_names(name) if env not in text]
    assert not missing, f"undocumented settings: {missing}"
