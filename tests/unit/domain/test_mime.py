"""MIME building: what a reader's mail client will parse from the bytes we send.

Messages are made from stored payloads of the first version (no Message-ID, no
``payload_version``), so these tests also prove that rows queued before the typed
message still send as they did.
"""

from __future__ import annotations

import email
import email.policy
from email.message import EmailMessage
from typing import Any

import pytest

from mail_proxy.domain.attachment_spec import InvalidAttachment, inline_content
from mail_proxy.domain.html_text import html_to_text
from mail_proxy.domain.mime import (
    Attachment,
    attachment_of,
    build_message,
    envelope_of,
)
from mail_proxy.domain.outgoing import OutgoingMessage, Unsendable, from_payload

NOW = 1_700_000_000.0


def payload(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": "msg-1",
        "from": "Sender <sender@example.org>",
        "to": ["to@example.com"],
        "subject": "Hello",
        "body": "Hi there\n",
    }
    base.update(overrides)
    return base


def message(**overrides: Any) -> OutgoingMessage:
    return from_payload(payload(**overrides))


def inline(loaded: OutgoingMessage) -> list[Attachment]:
    """The message's base64 attachments, as the resolver hands them over."""
    return [attachment_of(s, inline_content(s.storage_path)) for s in loaded.attachments]


def build(p: dict[str, Any], **kwargs: Any) -> tuple[bytes, EmailMessage]:
    loaded = from_payload(p)
    kwargs.setdefault("attachments", inline(loaded))
    raw = build_message(loaded, now=NOW, message_key="t1:1:0", **kwargs)
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    return raw, parsed


def test_minimal_payload_gets_every_required_header() -> None:
    """Only the required keys: From, To, Subject, Date, Message-ID and the proxy id."""
    raw, msg = build(payload())
    assert str(msg["From"]) == "Sender <sender@example.org>"
    assert str(msg["To"]) == "to@example.com"
    assert msg["Subject"] == "Hello"
    assert msg["Date"].datetime.timestamp() == NOW
    assert msg["Message-ID"].endswith("@example.org>")
    assert msg["X-Genro-Mail-ID"] == "msg-1"
    assert msg["MIME-Version"] == "1.0"
    assert msg.get_content_type() == "text/plain"
    assert msg["Content-Transfer-Encoding"] == "7bit"
    assert msg.get_content().replace("\r\n", "\n") == "Hi there\n"
    assert b"\r\n" in raw and b"\n" not in raw.replace(b"\r\n", b"")


def test_cc_reply_to_and_bcc_hidden() -> None:
    """Cc and Reply-To are headers; Bcc never appears anywhere in the message."""
    raw, msg = build(
        payload(
            cc=["Carl <cc@example.com>"],
            bcc=["secret@example.net"],
            reply_to="Replies <reply@example.org>",
        )
    )
    assert str(msg["Cc"]) == "Carl <cc@example.com>"
    assert str(msg["Reply-To"]) == "Replies <reply@example.org>"
    assert msg["Bcc"] is None
    assert b"secret@example.net" not in raw


def test_non_ascii_names_and_subject_are_encoded_words() -> None:
    """RFC 2047: the wire stays ASCII and a reader decodes the original text."""
    raw, msg = build(
        payload(
            **{
                "from": "Jörg Müller <jm@example.org>",
                "to": ["Zoë <z@example.com>"],
                "subject": "Grüße aus Köln — ünïcode " * 4,
            }
        )
    )
    assert raw.isascii()
    assert b"=?utf-8?" in raw
    assert msg["From"].addresses[0].display_name == "Jörg Müller"
    assert msg["To"].addresses[0].display_name == "Zoë"
    assert msg["Subject"] == "Grüße aus Köln — ünïcode " * 4


def test_unquoted_comma_in_display_name_of_a_list_entry() -> None:
    """Each list entry is one mailbox, so "Doe, John <…>" is not split in two."""
    _, msg = build(payload(to=["Doe, John <jd@example.com>", "x@example.com"]))
    addresses = msg["To"].addresses
    assert [(a.display_name, a.addr_spec) for a in addresses] == [
        ("Doe, John", "jd@example.com"),
        ("", "x@example.com"),
    ]


def test_comma_separated_string_of_recipients() -> None:
    """A plain string is an address list, as the protocol allows."""
    env = envelope_of(message(to="a@example.com, B <b@example.com>"))
    assert env.recipients == ("a@example.com", "b@example.com")


def test_international_domain_becomes_punycode() -> None:
    """RFC 5890: an IDN domain goes out in its ASCII form, in headers and envelope."""
    raw, _ = build(payload(to=["kunde@bücher.de"]))
    assert b"kunde@xn--bcher-kva.de" in raw
    assert envelope_of(message(to=["kunde@bücher.de"])).recipients == ("kunde@xn--bcher-kva.de",)


def test_long_recipient_list_is_folded() -> None:
    """RFC 5322 §2.1.1: header lines stay short; all recipients survive the folding."""
    recipients = [f"recipient{i}@example.com" for i in range(30)]
    raw, msg = build(payload(to=recipients))
    assert max(len(line) for line in raw.split(b"\r\n")) <= 78
    assert [a.addr_spec for a in msg["To"].addresses] == recipients


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("<abc@client.example>", "<abc@client.example>"),
        ("abc@client.example", "<abc@client.example>"),
    ],
)
def test_client_message_id_is_used(given: str, expected: str) -> None:
    """The client's message_id wins, in angle brackets (RFC 5322 §3.6.4)."""
    _, msg = build(payload(message_id=given))
    assert msg["Message-ID"] == expected


def test_stored_message_without_message_id_gets_a_stable_one() -> None:
    """A row queued before submission assigned Message-IDs: every attempt carries
    the same one, derived from its queue position; other messages differ."""
    first = build_message(message(), now=NOW, message_key="t:1:0")
    again = build_message(message(), now=NOW + 60, message_key="t:1:0")
    other = build_message(message(), now=NOW, message_key="t:2:0")

    def mid(raw: bytes) -> str:
        return str(email.message_from_bytes(raw, policy=email.policy.default)["Message-ID"])

    assert mid(first) == mid(again)
    assert mid(first) != mid(other)


def test_custom_headers_added_reserved_ones_ignored() -> None:
    """Extra headers go out (encoded if needed); ones the proxy writes are not doubled."""
    _, msg = build(
        payload(
            headers={
                "X-Campaign": "spring",
                "X-Note": "café",
                "Subject": "override",
                "Bcc": "x@example.com",
            }
        )
    )
    assert msg["X-Campaign"] == "spring"
    assert msg["X-Note"] == "café"
    assert msg.get_all("Subject") == ["Hello"]
    assert msg["Bcc"] is None


@pytest.mark.parametrize(
    "headers", [{"X-Evil": "a\r\nBcc: victim@example.com"}, {"Bad Name": "x"}, {"X:Y": "x"}]
)
def test_header_injection_and_bad_names_are_refused(headers: dict[str, str]) -> None:
    """A line break in a value or an invalid field name never reaches the wire."""
    with pytest.raises(Unsendable):
        build(payload(headers=headers))


def test_html_with_text_alternative() -> None:
    """RFC 2046 §5.1.4: multipart/alternative, plain text first, then the html."""
    _, msg = build(payload(content_type="html", body="<p>Hello <b>world</b></p>"))
    assert msg.get_content_type() == "multipart/alternative"
    text, html = list(msg.iter_parts())
    assert text.get_content_type() == "text/plain"
    assert text.get_content().strip() == "Hello world"
    assert html.get_content_type() == "text/html"
    assert "<b>world</b>" in html.get_content()


def test_html_without_alternative() -> None:
    """With the alternative switched off the html is the whole body."""
    _, msg = build(payload(content_type="html", body="<p>Hi</p>"), html_text_alternative=False)
    assert msg.get_content_type() == "text/html"


def test_non_ascii_and_long_lines_use_quoted_printable() -> None:
    """Text that is not 7bit-safe is QP-encoded, so no line passes 998 octets."""
    body = "Grüße\n" + "x" * 2000 + "\n"
    raw, msg = build(payload(body=body))
    assert msg["Content-Transfer-Encoding"] == "quoted-printable"
    assert max(len(line) for line in raw.split(b"\r\n")) <= 78
    assert msg.get_content().replace("\r\n", "\n") == body


def test_base64_attachments() -> None:
    """Inline attachments decode; type from mime_type or guessed from the name."""
    attachments = [
        {"filename": "report.pdf", "storage_path": "base64:JVBERi0xLjQ="},
        {
            "filename": "data.bin",
            "storage_path": "AAEC",
            "fetch_mode": "base64",
            "mime_type": "application/x-custom",
        },
        {"filename": "résumé.txt", "storage_path": "base64:aGk="},
    ]
    _, msg = build(payload(attachments=attachments))
    assert msg.get_content_type() == "multipart/mixed"
    body, *files = list(msg.iter_parts())
    assert body.get_content_type() == "text/plain"
    assert [(f.get_filename(), f.get_content_type()) for f in files] == [
        ("report.pdf", "application/pdf"),
        ("data.bin", "application/x-custom"),
        ("résumé.txt", "text/plain"),
    ]
    assert files[0].get_payload(decode=True) == b"%PDF-1.4"
    assert files[1].get_payload(decode=True) == b"\x00\x01\x02"


def test_attachment_with_html_alternative() -> None:
    """Attachments wrap the alternative part in multipart/mixed."""
    p = payload(
        content_type="html",
        body="<p>x</p>",
        attachments=[{"filename": "a.txt", "storage_path": "base64:eA=="}],
    )
    _, msg = build(p)
    assert [part.get_content_type() for part in msg.walk()] == [
        "multipart/mixed",
        "multipart/alternative",
        "text/plain",
        "text/html",
        "text/plain",
    ]


def test_invalid_base64_is_an_error() -> None:
    """Broken attachment data is refused instead of sending a corrupt file."""
    with pytest.raises(InvalidAttachment, match="not valid base64"):
        inline_content("base64:@@")


def test_explicit_attachment_list_is_used() -> None:
    """The caller may hand over attachments resolved elsewhere."""
    _, msg = build(payload(), attachments=[Attachment("x.csv", b"a,b\n", "text/csv")])
    assert [p.get_filename() for p in msg.iter_attachments()] == ["x.csv"]


def test_envelope_uses_return_path_and_every_recipient_once() -> None:
    """RFC 5321: MAIL FROM is return_path when given; To, Cc and Bcc all get RCPT."""
    env = envelope_of(
        message(
            return_path="bounces@example.org",
            to=["a@example.com", "A@example.com"],
            cc=["c@example.com"],
            bcc=["b@example.com"],
        )
    )
    assert env.sender == "bounces@example.org"
    assert env.recipients == ("a@example.com", "c@example.com", "b@example.com")


def test_envelope_sender_defaults_to_from_address() -> None:
    """Without return_path the From address (not its display name) is the sender."""
    assert envelope_of(message()).sender == "sender@example.org"


@pytest.mark.parametrize("overrides", [{"to": []}, {"from": None}, {"to": ["not-an-address"]}])
def test_unsendable_payloads(overrides: dict[str, Any]) -> None:
    """No recipients, no sender, or something that is not an address is unsendable."""
    with pytest.raises(Unsendable):
        from_payload(payload(**overrides))


def test_html_to_text_rendering() -> None:
    """Scripts and styles vanish, blocks break lines, links keep their target."""
    html = (
        "<html><head><style>p{}</style><title>T</title></head><body>"
        "<h1>Title</h1><p>Go <a href='https://x.example/'>here</a>&amp; now</p>"
        "<ul><li>one</li><li>two</li></ul><script>alert(1)</script></body></html>"
    )
    assert html_to_text(html) == "Title\n\nGo here (https://x.example/)& now\n\n- one\n\n- two\n"


@pytest.mark.parametrize(
    ("to", "utf8"),
    [
        (["to@example.com"], False),
        (["to@bücher.example"], False),  # the domain goes as punycode
        (["Jörg <jörg@example.com>"], True),
        (["to@example.com", "用户@example.com"], True),
    ],
)
def test_non_ascii_local_part_marks_the_envelope_utf8(to: list[str], utf8: bool) -> None:
    """RFC 6531: only a non-ASCII local part needs SMTPUTF8; it is kept as it is in
    the envelope and written raw in the headers (RFC 6532 §3.2)."""
    p = payload(to=to)
    envelope = envelope_of(from_payload(p))
    assert envelope.utf8 is utf8
    raw, _ = build(p)
    assert raw.isascii() is not utf8
    head = raw.split(b"\r\n\r\n", 1)[0].decode("utf-8")
    assert all(rcpt in head for rcpt in envelope.recipients if not rcpt.isascii())


@pytest.mark.parametrize(
    ("subject", "custom"),
    [
        ("x" * 1500, None),  # one word: no whitespace to fold at
        ("word " * 400, None),
        ("ü" * 1200, None),
        ("Hello", "y" * 2000),  # custom headers too
    ],
)
def test_no_header_line_is_longer_than_998(subject: str, custom: str | None) -> None:
    """RFC 5322 §2.1.1: lines of at most 998 characters, however long the value;
    the value reads back unchanged."""
    headers = {"X-Long": custom} if custom else {}
    raw, msg = build(payload(subject=subject, headers=headers))
    head = raw.split(b"\r\n\r\n", 1)[0]
    assert max(len(line) for line in head.split(b"\r\n")) <= 998
    assert msg["Subject"] == subject.strip() or msg["Subject"] == subject
    if custom:
        assert msg["X-Long"] == custom


@pytest.mark.parametrize(
    ("filename", "sent"),
    [
        ("report_{MD5:d41d8cd98f00b204e9800998ecf8427e}.pdf", "report.pdf"),
        ("{MD5:D41D8CD98F00B204E9800998ECF8427E}invoice.txt", "invoice.txt"),
        ("plain.txt", "plain.txt"),
        ("{MD5:abc}", "attachment"),
    ],
)
def test_md5_marker_is_stripped_from_the_sent_filename(filename: str, sent: str) -> None:
    """Protocol: the cache marker is removed from the sent filename."""
    p = payload(attachments=[{"filename": filename, "storage_path": "base64:aGk="}])
    raw, msg = build(p)
    _, part = list(msg.iter_parts())
    assert part.get_filename() == sent
    assert b"MD5" not in raw


@pytest.mark.parametrize(
    "fields",
    [
        {"reply_to": "josé@example.com"},
        {"from": "josé@example.com", "return_path": "bounces@example.com"},
    ],
    ids=["reply-to", "from-behind-return-path"],
)
def test_non_ascii_header_address_outside_the_envelope_needs_smtputf8(
    fields: dict[str, str],
) -> None:
    """A raw UTF-8 header (RFC 6532) may only travel with SMTPUTF8, even when every
    envelope address is ASCII."""
    p = payload(to=["to@example.com"]) | fields
    envelope = envelope_of(from_payload(p))
    assert envelope.sender.isascii() and all(r.isascii() for r in envelope.recipients)
    assert envelope.utf8 is True
    raw, _ = build(p)
    assert not raw.isascii()


def test_large_attachment_base64_is_whole_across_blocks() -> None:
    """Encoded block by block: every line 76 characters (RFC 2045 §6.8) but the
    last, and the content decodes back byte for byte."""
    content = bytes(range(256)) * 500  # 128,000 bytes: three blocks, the last partial
    raw, msg = build(payload(), attachments=[Attachment("big.bin", content, "application/x")])
    [part] = msg.iter_attachments()
    assert part.get_content() == content
    encoded = raw.split(b'filename="big.bin"\r\n\r\n')[1].split(b"\r\n--")[0]
    lines = encoded.split(b"\r\n")
    assert {len(line) for line in lines[:-2]} == {76} and lines[-1] == b""
