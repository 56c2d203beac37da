"""Large-file rules, the choice of oversized attachments, the body rewrite, tokens."""

from __future__ import annotations

from typing import Any

import pytest

from mail_proxy.domain.html_text import html_to_text
from mail_proxy.domain.large_file_config import DAY, MB, Action, large_file_rules
from mail_proxy.domain.large_files import (
    DownloadLink,
    download_token,
    file_expiry,
    human_size,
    object_key,
    oversized,
    read_download_token,
    with_download_links,
)
from mail_proxy.domain.mime import Attachment
from mail_proxy.testing import outgoing

NOW = 1_767_225_600.0  # 2026-01-01 00:00 UTC
KEY = b"k" * 32


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        (None, None),
        ({}, None),
        ({"enabled": False, "action": "reject"}, None),
        ({"enabled": True}, (10 * MB, Action.WARN)),
        ({"enabled": True, "max_size_mb": 0.5, "action": "reject"}, (MB // 2, Action.REJECT)),
        (
            {"enabled": True, "max_size_mb": 2, "action": "rewrite", "storage_url": "s3://b/p"},
            (2 * MB, Action.REWRITE),
        ),
    ],
)
def test_rules(config: dict[str, Any] | None, expected: tuple[int, Action] | None) -> None:
    rules = large_file_rules(config)
    assert (None if rules is None else (rules.max_bytes, rules.action)) == expected


@pytest.mark.parametrize(
    ("config", "problem"),
    [
        ({"action": "rewrite"}, "needs a storage_url"),
        ({"action": "rewrite", "storage_url": "gs://bucket"}, "must start with file://, s3://"),
        ({"storage_url": "s3://AKIA:secret@bucket/p"}, "not in storage_url"),
        ({"storage_url": "file://relative/dir"}, "absolute path"),
        ({"storage_url": "s3:///no-bucket"}, "needs a bucket"),
        ({"action": "shred"}, "is not a valid Action"),
    ],
)
def test_rules_refused(config: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        large_file_rules({"enabled": True, **config})


def test_oversized_keeps_order_and_the_limit_itself() -> None:
    rules = large_file_rules({"enabled": True, "max_size_mb": 1})
    assert rules is not None
    small, exact, big = (Attachment(n, b"x" * s, "text/plain") for n, s in
                         (("a", 10), ("b", MB), ("c", MB + 1)))  # fmt: skip
    assert oversized(rules, [big, small, exact]) == ([small, exact], [big])
    assert file_expiry(rules, NOW) == NOW + 30 * DAY


@pytest.mark.parametrize(
    ("size", "shown"),
    [
        (0, "0 B"),
        (1023, "1023 B"),
        (1536, "1.5 KB"),
        (15_938_355, "15.2 MB"),
        (3 * 1024**3, "3.0 GB"),
    ],
)
def test_human_size(size: int, shown: str) -> None:
    assert human_size(size) == shown


@pytest.mark.parametrize(
    ("filename", "key"),
    [
        ("report.pdf", "acme/f1/report.pdf"),
        ("../../etc/passwd", "acme/f1/etc_passwd"),
        ("rapport d'été.pdf", "acme/f1/rapport_d_t_.pdf"),
        ("...", "acme/f1/file"),
    ],
)
def test_object_key_stays_under_the_prefix(filename: str, key: str) -> None:
    assert object_key("acme", "f1", filename) == key


LINK = DownloadLink('big <"1">.pdf', 15_938_355, "https://files.example/f?a=1&b=2", NOW + DAY)


def test_text_body_gets_a_text_list() -> None:
    message = with_download_links(outgoing(body="Hello.\n"), [LINK])
    assert message.body == (
        "Hello.\n\n-- \nFiles available for download:\n"
        '- big <"1">.pdf (15.2 MB, until 2026-01-02 00:00 UTC)\n'
        "  https://files.example/f?a=1&b=2\n"
    )
    assert message.content_type == "plain"


@pytest.mark.parametrize(
    ("body", "expected_start", "expected_end"),
    [
        ("<p>Hi</p>", "<p>Hi</p><hr>", "</li></ul>"),
        ("<html><body><p>Hi</p></BODY></html>", "<html><body><p>Hi</p><hr>", "</ul></BODY></html>"),
    ],
)
def test_html_body_gets_an_escaped_list(body: str, expected_start: str, expected_end: str) -> None:
    message = with_download_links(outgoing(body=body, content_type="html"), [LINK])
    assert message.body.startswith(expected_start)
    assert (
        '<li><a href="https://files.example/f?a=1&amp;b=2">big &lt;&quot;1&quot;&gt;.pdf</a>'
        " (15.2 MB, until 2026-01-02 00:00 UTC)</li>"
    ) in message.body
    assert message.body.endswith(expected_end)
    text = html_to_text(message.body)
    assert 'big <"1">.pdf' in text and "https://files.example/f?a=1&b=2" in text


def test_no_links_no_change() -> None:
    message = outgoing(body="Hello")
    assert with_download_links(message, []) is message


def test_token_round_trip_and_refusals() -> None:
    file_id = "0123456789abcdef0123456789abcdef"
    token = download_token(KEY, file_id, NOW + DAY)
    assert read_download_token(KEY, token, NOW) == file_id
    assert read_download_token(KEY, token, NOW + DAY) is None  # expired
    assert read_download_token(b"other-key", token, NOW) is None
    later = token.replace(str(int(NOW + DAY)), str(int(NOW + 9 * DAY)))
    assert read_download_token(KEY, later, NOW) is None  # expiry altered
    assert read_download_token(KEY, token[:-1] + ("A" if token[-1] != "A" else "B"), NOW) is None
    assert read_download_token(KEY, "x" * 300, NOW) is None
    assert read_download_token(KEY, "../etc/passwd", NOW) is None
