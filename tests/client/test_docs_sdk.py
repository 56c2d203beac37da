"""The snippets of docs/sdk.md run, in order, against a real proxy."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mail_proxy.testing import ServedProxy

pytestmark = pytest.mark.slow

DOC = Path(__file__).parents[2] / "docs" / "sdk.md"


def test_the_sdk_page_runs(served: ServedProxy, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GMP_API_URL", served.url)
    monkeypatch.setenv("GMP_API_TOKEN", served.token)
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.DOTALL)
    assert len(blocks) >= 5
    namespace: dict[str, object] = {}
    exec(compile("\n".join(blocks), str(DOC), "exec"), namespace)
    assert namespace["answer"].queued == 1  # type: ignore[attr-defined]
