"""The typed outgoing message: what validation makes, how it is stored and loaded,
its Message-ID, and MIME built from it as given."""

from __future__ import annotations

import email
import email.policy
import os
import re
from typing import Any

import pytest

from mail_proxy.domain.addresses import Mailbox
from mail_proxy.domain.attachment_spec import AttachmentSpec, inline_content
from mail_proxy.domain.mime import attachment_of, build_message, envelope_of
from mail_proxy.domain.models import Account, AuthMethod, ClientAuth, Tenant
from mail_proxy.domain.outgoing import (
    MAX_MESSAGE_ID,
    PAYLOAD_VERSION,
    OutgoingMessage,
    Unsendable,
    from_payload,
    new_message_id,
    to_payload,
)
from mail_proxy.domain.validation import (
    Rejection,
    ValidationContext,
    new_message,
    validate_message,
)

NOW = 1_700_000_000.0
CONTEXT = ValidationContext(
    tenants={"acme": Tenant(id="acme")},
    accounts={
        "acme": [
            Account(
                id="main",
                tenant_id="acme",
                host="smtp.example.com",
                default_from="ACME <noreply@acme.example>",
            )
        ]
    },
    token_tenant_id="acme",
)
GENERATED = re.compile(r"^<[0-9a-f]{32}@(?P<domain>[^>]+)>$")


def validated(**fields: Any) -> OutgoingMessage:
    raw = {"id": "m1", "to": "ann@example.com", "subject": "Hi"} | fields
    result = validate_message(raw, CONTEXT)
    assert isinstance(result, OutgoingMessage), result
    return result


def rejected(**fields: Any) -> str:
    raw = {"id": "m1", "to": "ann@example.com", "subject": "Hi"} | fields
    result = validate_message(raw, CONTEXT)
    assert isinstance(result, Rejection), result
    return result.reason


def wire(
    message: OutgoingMessage, *, now: float = NOW, key: str = "acme/1/0"
) -> email.message.EmailMessage:
    attachments = [attachment_of(s, inline_content(s.storage_path)) for s in message.attachments]
    raw = build_message(message, attachments=attachments, now=now, message_key=key)
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(parsed, email.message.EmailMessage)
    return parsed


# -- validation makes typed values --------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "attribute", "expected"),
    [
        ({}, "sender", Mailbox("ACME", "noreply@acme.example")),
        ({"from": "Bob <bob@acme.example>"}, "sender", Mailbox("Bob", "bob@acme.example")),
        ({"from_name": "Billing"}, "sender", Mailbox("Billing", "noreply@acme.example")),
        ({"to": '"Doe, John" <jd@example.com>, x@example.com'}, "to",
         (Mailbox("Doe, John", "jd@example.com"), Mailbox("", "x@example.com"))),
        ({"cc": ["c@example.com"]}, "cc", (Mailbox("", "c@example.com"),)),
        ({"bcc": "b@example.com"}, "bcc", (Mailbox("", "b@example.com"),)),
        ({"reply_to": "R <r@example.com>"}, "reply_to", (Mailbox("R", "r@example.com"),)),
        ({"return_path": "Bounces <b@acme.example>"}, "return_path", "b@acme.example"),
        ({"html": True}, "content_type", "html"),
        ({"headers": {"X-Tag": "7", "Subject": "no", "Bcc": "no"}}, "headers", (("X-Tag", "7"),)),
        ({"priority": "high"}, "priority", 1),
        ({"deferred_ts": 1_800_000_000}, "deferred_ts", 1_800_000_000),
        ({"batch_code": "spring"}, "batch_code", "spring"),
        ({"attachments": [{"filename": "a.txt", "storage_path": "base64:aGk="}]}, "attachments",
         (AttachmentSpec("a.txt", "base64:aGk=", "base64"),)),
        ({"attachments": [{"filename": "b.pdf", "storage_path": "key-7",
                           "auth": {"method": "bearer", "token": "t"}}]}, "attachments",
         (AttachmentSpec("b.pdf", "key-7", "endpoint", auth=ClientAuth(AuthMethod.BEARER, "t")),)),
    ],
)  # fmt: skip
def test_validation_returns_typed_fields(
    fields: dict[str, Any], attribute: str, expected: object
) -> None:
    """Each submitted field arrives parsed into its typed form."""
    assert getattr(validated(**fields), attribute) == expected


def test_the_default_sender_is_applied_at_validation() -> None:
    """The account's default sender is written into the message once, at submission;
    the stored payload names it, so sending needs no account lookup for it."""
    message = validated()
    assert message.sender == Mailbox("ACME", "noreply@acme.example")
    assert to_payload(message)["from"] == "ACME <noreply@acme.example>"


# -- Message-ID ---------------------------------------------------------------------


def test_a_message_id_is_made_on_the_sender_domain() -> None:
    """RFC 5322 §3.6.4 msg-id, random on the left, the sender's domain on the right."""
    first, second = validated(), validated()
    assert first.message_id is not None and second.message_id is not None
    found = GENERATED.match(first.message_id)
    assert found and found["domain"] == "acme.example"
    assert first.message_id != second.message_id


def test_a_forked_process_does_not_repeat_its_parents_message_ids() -> None:
    """The msg-id generator is seeded again in a forked child (a server's workers,
    multiprocessing): the child's next ids are not the parent's next ids."""
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child reports through the pipe
        os.write(write_end, " ".join(new_message_id("x.example") for _ in range(3)).encode())
        os._exit(0)
    os.close(write_end)
    os.waitpid(child, 0)
    with os.fdopen(read_end) as pipe:
        in_child = set(pipe.read().split())
    in_parent = {new_message_id("x.example") for _ in range(3)}
    assert len(in_child) == 3
    assert not in_child & in_parent


def test_an_international_sender_domain_becomes_ascii_in_the_message_id() -> None:
    message_id = validated(**{"from": "x@bücher.example"}).message_id
    assert message_id is not None and message_id.endswith("@xn--bcher-kva.example>")


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"message_id": "<abc@client.example>"}, "<abc@client.example>"),
        ({"message_id": "  abc@client.example "}, "<abc@client.example>"),
        ({"headers": {"Message-ID": "<h@client.example>"}}, "<h@client.example>"),
        ({"headers": {"message-id": "h@client.example"}}, "<h@client.example>"),
        ({"message_id": "f@client.example", "headers": {"Message-ID": "<h@x.example>"}},
         "<f@client.example>"),
    ],
)  # fmt: skip
def test_a_client_message_id_is_kept_normalised(fields: dict[str, Any], expected: str) -> None:
    """The client's id (the field first, else the header) wins, in angle brackets,
    and the header is not written twice."""
    message = validated(**fields)
    assert message.message_id == expected
    assert all(name.lower() != "message-id" for name, _ in message.headers)
    assert wire(message).get_all("Message-ID") == [expected]


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"message_id": "no at sign"}, "invalid message_id"),
        ({"message_id": "a b@c.example"}, "invalid message_id"),
        ({"message_id": "<a@b.example> trailing"}, "invalid message_id"),
        ({"message_id": "x" * MAX_MESSAGE_ID + "@c.example"}, "invalid message_id"),
        ({"message_id": 7}, "invalid message_id: must be a string"),
        ({"headers": {"Message-ID": "nope"}}, "invalid Message-ID header"),
        ({"message_id": "a@b.example\r\nBcc: x@y.example"}, "header injection"),
    ],
)
def test_a_malformed_client_message_id_is_refused(fields: dict[str, Any], reason: str) -> None:
    assert reason in rejected(**fields)


@pytest.mark.parametrize("fields", [{"message_id": ""}, {"headers": {"Message-ID": ""}}])
def test_an_empty_client_message_id_is_none_given(fields: dict[str, Any]) -> None:
    message_id = validated(**fields).message_id
    assert message_id is not None and GENERATED.match(message_id)


def test_the_message_id_is_the_same_on_every_attempt_and_stored_apart() -> None:
    """Assigned once: a retry an hour later, from the stored row, sends the same id,
    and the queue gets it as its own field for tracing bounces and receipts."""
    message = validated()
    stored = new_message(message)
    again = from_payload(stored.payload)
    assert stored.rfc_message_id == message.message_id
    assert wire(again, now=NOW + 3600, key="other")["Message-ID"] == message.message_id


# -- stored form --------------------------------------------------------------------


@pytest.mark.parametrize(
    "fields",
    [
        {},
        {"to": ['"Doe, John" <jd@example.com>', "Zoë <z@bücher.example>"], "cc": "c@example.com"},
        {"from": '"Quote \\" me" <q@acme.example>', "reply_to": "a@x.example, B <b@y.example>"},
        {"to": "Jörg <jörg@example.com>", "return_path": "bounce@acme.example"},
        {"html": True, "body": "<p>hé</p>", "headers": {"X-A": "1", "X-B": "é"}},
        {"priority": 0, "deferred_ts": 1_900_000_000, "batch_code": "b-1"},
        {"attachments": [
            {"filename": "a.txt", "storage_path": "base64:aGk=", "mime_type": "text/plain"},
            {"filename": "b.pdf", "storage_path": "https://x.example/b",
             "content_md5": "D41D8CD98F00B204E9800998ECF8427E",
             "auth": {"method": "basic", "user": "u", "password": "p"}},
        ]},
    ],
)  # fmt: skip
def test_payload_round_trip(fields: dict[str, Any]) -> None:
    """What is stored loads back equal, and stores again to the same JSON."""
    message = validated(**fields)
    payload = to_payload(message)
    assert payload["payload_version"] == PAYLOAD_VERSION
    assert from_payload(payload) == message
    assert to_payload(from_payload(payload)) == payload


OLD_ROW: dict[str, Any] = {
    "id": "old-1",
    "tenant_id": "acme",
    "account_id": "main",
    "from": "ACME <noreply@acme.example>",
    "to": ["Doe, John <jd@example.com>", "x@example.com"],
    "cc": [],
    "bcc": ["hidden@example.com"],
    "reply_to": "r@example.com",
    "return_path": None,
    "subject": "Invoice",
    "body": "<p>Hi</p>",
    "content_type": "html",
    "headers": {"X-Campaign": "7", "Subject": "ignored", "Message-ID": "<ignored@x>"},
    "message_id": None,
    "priority": 2,
    "deferred_ts": None,
    "batch_code": None,
    "attachments": [{"filename": "a_{MD5:d41d8cd98f00b204e9800998ecf8427e}.txt",
                     "storage_path": "base64:aGk="}],
}  # fmt: skip
"""A row as the version before the typed message stored it: no payload_version, no
Message-ID, reserved header names still there, an attachment without fetch_mode."""


def test_a_row_stored_by_the_previous_version_still_sends() -> None:
    message = from_payload(OLD_ROW)
    assert message.to == (Mailbox("Doe, John", "jd@example.com"), Mailbox("", "x@example.com"))
    assert message.headers == (("X-Campaign", "7"),)
    assert message.attachments[0].fetch_mode == "base64"
    assert envelope_of(message).recipients == (
        "jd@example.com",
        "x@example.com",
        "hidden@example.com",
    )
    sent = wire(message, key="acme/5/100")
    again = wire(message, now=NOW + 60, key="acme/5/100")
    assert sent["Message-ID"] == again["Message-ID"]
    assert sent["Message-ID"].endswith("@acme.example>")
    assert sent["Subject"] == "Invoice" and sent["X-Campaign"] == "7"
    assert [part.get_filename() for part in sent.iter_attachments()] == ["a.txt"]


def test_an_old_client_message_id_is_bracketed_as_sending_did() -> None:
    assert from_payload(OLD_ROW | {"message_id": "abc@client"}).message_id == "<abc@client>"


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"payload_version": PAYLOAD_VERSION + 1}, "newer than this proxy"),
        ({"from": None}, "no sender"),
        ({"from": "a@x.example, b@y.example"}, "from must be one address"),
        ({"to": [], "bcc": []}, "no recipients"),
        ({"to": ["not-an-address"]}, "invalid address"),
        ({"headers": {"Bad Name": "x"}}, "invalid header name"),
        ({"headers": {"X-A": "a\r\nBcc: v@example.com"}}, "line break"),
        ({"message_id": "a@b\r\nX: y"}, "line break"),
    ],
)
def test_an_unsendable_row_says_why(changes: dict[str, Any], reason: str) -> None:
    with pytest.raises(Unsendable, match=reason):
        from_payload(OLD_ROW | changes)


@pytest.mark.parametrize(
    "address",
    [
        "plain@example.com",
        "first.last+tag@sub.example.co.uk",
        "o'neil@example.com",
        "x!#$%&*/=?^_`{|}~-@example.com",
        "a..b@example.com",
        ".lead@example.com",
        '"quoted local"@example.com',
        "user@[192.0.2.1]",
        "jörg@bücher.example",
        "  padded@example.com ",
        "Name <named@example.com>",
        "named@example.com (comment)",
    ],
)
def test_stored_addresses_read_back_as_the_parser_reads_them(address: str) -> None:
    """The shortcut for bare addresses gives what the email parser gives."""
    from email.utils import getaddresses, parseaddr

    row = OLD_ROW | {"from": address, "to": [address], "cc": [], "bcc": []}
    listed, whole = parseaddr(address.strip()), getaddresses([address.strip()])
    try:
        message = from_payload(row)
    except Unsendable:
        assert "@" not in listed[1] or "@" not in whole[0][1] or len(whole) != 1
        return
    assert message.to == (Mailbox(*listed),)
    assert message.sender == Mailbox(*whole[0])


# -- MIME from the typed value ------------------------------------------------------


def test_mime_writes_the_typed_values_as_given() -> None:
    """A display name holding what looks like an address is a name, not parsed
    again into a second mailbox: MIME building encodes, it does not parse."""
    message = OutgoingMessage(
        id="t1",
        tenant_id="acme",
        account_id="main",
        sender=Mailbox("Ops, Team <fake@evil.example>", "ops@acme.example"),
        to=(Mailbox("Ann", "ann@example.com"),),
        subject="Typed",
        message_id="<typed@acme.example>",
        headers=(("X-Tag", "1"),),
    )
    sent = wire(message)
    assert [(a.display_name, a.addr_spec) for a in sent["From"].addresses] == [
        ("Ops, Team <fake@evil.example>", "ops@acme.example")
    ]
    assert sent["Message-ID"] == "<typed@acme.example>"
    assert envelope_of(message).sender == "ops@acme.example"
    assert envelope_of(message).recipients == ("ann@example.com",)
