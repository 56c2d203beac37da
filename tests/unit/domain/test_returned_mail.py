"""Returned mail → bounce, PEC receipt or ignored, from samples in their senders' formats."""

from __future__ import annotations

import pytest

from mail_proxy import returned_samples as samples
from mail_proxy.domain.bounces import BounceType, classify
from mail_proxy.domain.models import EventType
from mail_proxy.domain.pec import MAX_DATICERT, PecReceipt
from mail_proxy.domain.returned_mail import MAX_PARSED, Bounce, Ignored, read_returned

HARD, SOFT = BounceType.HARD, BounceType.SOFT


@pytest.mark.parametrize(
    ("raw", "address", "kind", "code", "reason_part", "mail_id", "message_id"),
    [
        (samples.postfix_dsn(), "nobody@example.org", HARD, "5.1.1", "User unknown", "m1",
         "<m1@proxy.example>"),
        (samples.gmail_dsn(), "full@gmail.example", SOFT, "4.2.2", "over quota", "m2",
         "<m2@proxy.example>"),
        (samples.exchange_dsn(), "gone@contoso.example", HARD, "5.1.10", "RecipientNotFound",
         "m3", "<m3@proxy.example>"),
        (samples.exim_bounce(), "missing@example.net", HARD, "5.1.1", "No such user", "m4",
         "<m4@proxy.example>"),
        (samples.qmail_bounce(), "olduser@example.com", HARD, "5.1.1", "no mailbox", "m5",
         "<m5@proxy.example>"),
        (samples.postfix_dsn(status="5.2.2", diagnostic="552 5.2.2 Mailbox full"),
         "nobody@example.org", SOFT, "5.2.2", "Mailbox full", "m1", "<m1@proxy.example>"),
        (samples.postfix_dsn(status="4.7.1", diagnostic="450 4.7.1 Greylisted, try later"),
         "nobody@example.org", SOFT, "4.7.1", "Greylisted", "m1", "<m1@proxy.example>"),
        (samples.postfix_dsn(mail_id=None, message_id=None), "nobody@example.org", HARD,
         "5.1.1", "User unknown", None, None),
    ],
)  # fmt: skip
def test_bounces_are_classified(
    raw: bytes,
    address: str,
    kind: BounceType,
    code: str,
    reason_part: str,
    mail_id: str | None,
    message_id: str | None,
) -> None:
    """Each sender's format gives the failed recipient, its class, code and reason,
    and the keys of the returned original."""
    result = read_returned(raw)
    assert isinstance(result, Bounce)
    [failed] = result.recipients
    assert (failed.address, failed.bounce_type, failed.code) == (address, kind, code)
    assert reason_part in failed.reason
    assert (result.mail_id, result.original_message_id) == (mail_id, message_id)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (samples.auto_reply(), "automatic reply"),
        (samples.auto_reply(rfc3834=False), "automatic reply"),
        (samples.auto_reply("Risposta automatica: fattura", rfc3834=False), "automatic reply"),
        (samples.postfix_dsn(action="delayed", status="4.4.1"), "no failed recipient"),
        (samples.postfix_dsn(action="delivered", status="2.0.0"), "no failed recipient"),
        (b"From: a@example.org\r\nSubject: hello\r\n\r\nJust a letter.\r\n", "not a bounce"),
        (b"", "unreadable notice"),
        (b"\x00\xff\xfe garbage \r\n\r\n\x00", "unreadable notice"),
        (b"Content-Type: multipart/report; report-type=delivery-status\r\n\r\nno parts",
         "unreadable notice"),
    ],
    ids=["rfc3834", "x-autoreply", "subject", "delayed", "delivered", "letter", "empty",
         "garbage", "empty-report"],
)  # fmt: skip
def test_what_is_not_a_bounce_is_ignored(raw: bytes, reason: str) -> None:
    """Auto-replies, delay and success notices, letters and garbage never bounce."""
    assert read_returned(raw) == Ignored(reason)


def test_a_huge_bounce_is_read_from_its_head_only() -> None:
    """The report comes first; a 5 MB tail is not parsed and the result is the same."""
    raw = samples.postfix_dsn() + b"X" * (10 * MAX_PARSED)
    result = read_returned(raw)
    assert isinstance(result, Bounce)
    assert result.recipients[0].code == "5.1.1"


def test_outside_text_is_bounded_and_storable() -> None:
    """A diagnostic of megabytes with NUL and invalid bytes is stored short and clean."""
    raw = samples.postfix_dsn(diagnostic="550 5.1.1 MARK" + "y" * 100_000)
    result = read_returned(raw.replace(b"MARK", b"\xff\x01\x00"))
    assert isinstance(result, Bounce)
    reason = result.recipients[0].reason
    assert len(reason) <= 500 and "\x00" not in reason
    reason.encode("utf-8")


@pytest.mark.parametrize(
    ("receipt", "event"),
    [
        ("accettazione", EventType.PEC_ACCEPTANCE),
        ("non-accettazione", EventType.PEC_ERROR),
        ("presa-in-carico", EventType.PEC_RELAY),
        ("avvenuta-consegna", EventType.PEC_DELIVERY),
        ("errore-consegna", EventType.PEC_ERROR),
        ("mancata-consegna", EventType.PEC_ERROR),
    ],
)
def test_pec_receipts(receipt: str, event: EventType) -> None:
    """X-Ricevuta decides the event; daticert.xml gives the certified details."""
    result = read_returned(samples.pec_receipt(receipt))
    assert isinstance(result, PecReceipt)
    assert (result.event, result.referenced_id) == (event, "<m6@proxy.example>")
    assert result.details["tipo"] == receipt
    assert result.details["consegna"] == "dest@pec.example.it"
    assert result.details["msgid"] == "<m6@proxy.example>"
    assert result.details["date"] == "05/12/2026 10:00:03 +0100"


@pytest.mark.parametrize(
    "xml_damage",
    [b"<!DOCTYPE x [<!ENTITY a 'aaaa'>]>", b"<not-closed>", b"X" * MAX_DATICERT],
)
def test_a_bad_daticert_leaves_the_header_decision(xml_damage: bytes) -> None:
    """A DOCTYPE, broken or oversized XML is not read; the receipt still counts."""
    raw = samples.pec_receipt("accettazione").replace(b"<?xml", xml_damage + b"<?xml", 1)
    result = read_returned(raw)
    assert isinstance(result, PecReceipt)
    assert result.event is EventType.PEC_ACCEPTANCE
    assert "tipo" not in result.details


def test_a_receipt_without_daticert_uses_its_headers() -> None:
    result = read_returned(samples.pec_receipt("accettazione", daticert=False))
    assert isinstance(result, PecReceipt)
    assert result.details == {"receipt": "accettazione", "transport": "posta-certificata"}


@pytest.mark.parametrize(
    ("status", "reason", "expected"),
    [
        ("5.1.1", "", (HARD, "5.1.1")),
        ("4.4.7", "", (SOFT, "4.4.7")),
        ("5.2.2", "", (SOFT, "5.2.2")),
        (None, "550 5.7.1 Message rejected as spam", (HARD, "5.7.1")),
        (None, "452 Too many recipients", (SOFT, "452")),
        (None, "mailbox is full", (SOFT, None)),
        (None, "user unknown", (HARD, None)),
        (None, "", (HARD, None)),
    ],
)
def test_classify(status: str | None, reason: str, expected: tuple[BounceType, str]) -> None:
    """RFC 3463 class decides; X.2.2 is soft; else the reply code; else the words."""
    assert classify(status, reason) == expected
