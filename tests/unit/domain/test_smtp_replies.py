"""Reply classification: which SMTP answers are worth a retry."""

from __future__ import annotations

import pytest

from mail_proxy.domain.smtp_replies import (
    Permanent,
    Reply,
    Stage,
    Transient,
    classify_refusals,
    classify_reply,
    connection_failure,
    without_banner,
)


@pytest.mark.parametrize(
    ("code", "text", "stage", "expected"),
    [
        (421, "4.3.2 Service shutting down", Stage.MAIL, Transient),
        (450, "Mailbox busy", Stage.RCPT, Transient),
        (451, "4.3.0 Local error", Stage.DATA, Transient),
        (452, "4.5.3 Too many recipients", Stage.RCPT, Transient),
        (454, "4.7.0 Temporary authentication failure", Stage.AUTH, Transient),
        (550, "5.1.1 User unknown", Stage.RCPT, Permanent),
        (535, "5.7.8 Authentication credentials invalid", Stage.AUTH, Permanent),
        (554, "Transaction failed", Stage.DATA, Permanent),
        (552, "Too many recipients", Stage.RCPT, Transient),
        (552, "5.3.4 Message too big", Stage.DATA, Permanent),
        (550, "4.7.1 Greylisted, try again", Stage.RCPT, Transient),
        (-1, "Malformed reply", Stage.DATA, Transient),
    ],
)
def test_classify_reply(code: int, text: str, stage: Stage, expected: type) -> None:
    """4yz retry, 5yz give up; 552 at RCPT and a 4.x.x enhanced code are transient."""
    verdict = classify_reply(Reply(code, text), stage)
    assert isinstance(verdict, expected)
    assert verdict.reason == f"{code} {text}"


def test_refusals_all_permanent_is_permanent() -> None:
    """Every recipient refused for good: the message fails, each refusal is named."""
    verdict = classify_refusals(
        {"a@x.org": Reply(550, "5.1.1 unknown"), "b@x.org": Reply(553, "bad mailbox")}
    )
    assert isinstance(verdict, Permanent)
    assert "a@x.org: 550 5.1.1 unknown" in verdict.reason
    assert "b@x.org: 553 bad mailbox" in verdict.reason


def test_refusals_with_one_transient_are_retried() -> None:
    """A single temporary refusal among permanent ones makes the whole try transient."""
    verdict = classify_refusals(
        {"a@x.org": Reply(550, "unknown"), "b@x.org": Reply(451, "try later")}
    )
    assert isinstance(verdict, Transient)


def test_connection_failure_is_transient() -> None:
    """No reply at all (refused, timeout, TLS) is always worth another attempt."""
    assert connection_failure("timeout", "no answer in 5 s") == Transient(
        "timeout: no answer in 5 s"
    )
    assert connection_failure("connection refused", "").reason == "connection refused"


@pytest.mark.parametrize(
    ("code", "text", "expected"),
    [
        (554, "mx.internal.example ESMTP Postfix 3.4.1 go away", "554"),
        (421, "4.7.0 mx1.corp.local too busy, try later", "421 4.7.0"),
        (550, "", "550"),
        (554, "5.7.1", "554 5.7.1"),
    ],
)
def test_greeting_refusal_keeps_code_and_enhanced_status_only(
    code: int, text: str, expected: str
) -> None:
    """No banner text (host names, versions) reaches a tenant; the class survives."""
    assert str(without_banner(code, text)) == expected
