"""The ``mail-proxy`` command on an install without the ``server`` extra."""

from __future__ import annotations

import sys

import pytest

from mail_proxy.__main__ import main


def test_missing_server_dependency_is_named_in_one_sentence(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An SDK-only install gets the pip line to run, not an import traceback."""
    monkeypatch.delitem(sys.modules, "mail_proxy.cli.main", raising=False)
    monkeypatch.setitem(sys.modules, "click", None)  # import click now fails as if absent
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert str(exit_info.value) == (
        "mail-proxy: the server is not installed (click is missing):"
        " pip install 'mail-proxy[server]'"
    )
