"""Returned mail as real MTAs and PEC providers write it, for tests and benchmarks.

Each builder follows the published or widely documented format of its sender:
RFC 3464 reports as Postfix, Gmail and Exchange write them, Exim's
``X-Failed-Recipients`` notice, qmail's QSBMF text, RFC 3834 auto-replies, and PEC
receipts with their ``daticert.xml``. The returned original carries the
``X-Genro-Mail-ID`` and ``Message-ID`` the proxy stamped, so correlation can be
tested end to end. Nothing here is used by the server itself.
"""

from __future__ import annotations

CRLF = "\r\n"


def _returned_headers(mail_id: str | None, message_id: str | None, rcpt: str) -> str:
    lines = ["From: Sender <sender@proxy.example>", f"To: <{rcpt}>", "Subject: Invoice"]
    if message_id is not None:
        lines.append(f"Message-ID: {message_id}")
    if mail_id is not None:
        lines.append(f"X-Genro-Mail-ID: {mail_id}")
    return CRLF.join(lines) + CRLF


def _id_of(mail_id: str | None) -> str | None:
    """The Message-ID the samples give the message of ``mail_id``."""
    return None if mail_id is None else f"<{mail_id}@proxy.example>"


def _report(
    *,
    sender: str,
    subject: str,
    human: str,
    mta: str,
    recipients: list[tuple[str, str, str, str]],
    original: str,
    original_type: str = "text/rfc822-headers",
) -> bytes:
    """A multipart/report (RFC 3464 §2): human text, delivery-status, original."""
    blocks = [f"Reporting-MTA: dns; {mta}{CRLF}Arrival-Date: Sat, 5 Dec 2026 10:00:00 +0000"]
    for rcpt, action, status, diagnostic in recipients:
        block = [f"Final-Recipient: rfc822; {rcpt}", f"Action: {action}", f"Status: {status}"]
        if diagnostic:
            block.append(f"Diagnostic-Code: smtp; {diagnostic}")
        blocks.append(CRLF.join(block))
    status = (CRLF + CRLF).join(blocks)
    boundary = "=_report_boundary"
    return (
        f"From: {sender}{CRLF}To: sender@proxy.example{CRLF}Subject: {subject}{CRLF}"
        f"Date: Sat, 5 Dec 2026 10:00:05 +0000{CRLF}Message-ID: <dsn.{mta}@{mta}>{CRLF}"
        f"Auto-Submitted: auto-replied (failure){CRLF}MIME-Version: 1.0{CRLF}"
        f'Content-Type: multipart/report; report-type=delivery-status; boundary="{boundary}"'
        f"{CRLF}{CRLF}--{boundary}{CRLF}Content-Type: text/plain; charset=us-ascii{CRLF}{CRLF}"
        f"{human}{CRLF}{CRLF}--{boundary}{CRLF}Content-Type: message/delivery-status{CRLF}{CRLF}"
        f"{status}{CRLF}{CRLF}--{boundary}{CRLF}Content-Type: {original_type}{CRLF}{CRLF}"
        f"{original}{CRLF}--{boundary}--{CRLF}"
    ).encode()


def postfix_dsn(
    rcpt: str = "nobody@example.org",
    *,
    mail_id: str | None = "m1",
    message_id: str | None = "<m1@proxy.example>",
    status: str = "5.1.1",
    diagnostic: str = "550 5.1.1 <nobody@example.org>: Recipient address rejected: User unknown",
    action: str = "failed",
) -> bytes:
    """Postfix's bounce(8) report: the "MAILER-DAEMON" notice with headers returned."""
    human = (
        "This is the mail system at host mx.proxy.example.\r\n\r\n"
        "I'm sorry to have to inform you that your message could not\r\n"
        "be delivered to one or more recipients."
    )
    return _report(
        sender="MAILER-DAEMON@mx.proxy.example (Mail Delivery System)",
        subject="Undelivered Mail Returned to Sender",
        human=human,
        mta="mx.proxy.example",
        recipients=[(rcpt, action, status, diagnostic)],
        original=_returned_headers(mail_id, message_id, rcpt),
    )


def gmail_dsn(rcpt: str = "full@gmail.example", *, mail_id: str | None = "m2") -> bytes:
    """Gmail's report: the whole original returned as message/rfc822."""
    original = _returned_headers(mail_id, _id_of(mail_id), rcpt) + CRLF + "Hello" + CRLF
    return _report(
        sender="Mail Delivery Subsystem <mailer-daemon@googlemail.com>",
        subject="Delivery Status Notification (Failure)",
        human="** Message not delivered **\r\n\r\nThe recipient's inbox is full.",
        mta="mx.google.com",
        recipients=[
            (rcpt, "failed", "4.2.2", "452 4.2.2 The email account that you tried to reach is "
             "over quota. gsmtp"),
        ],
        original=original,
        original_type="message/rfc822",
    )  # fmt: skip


def exchange_dsn(rcpt: str = "gone@contoso.example", *, mail_id: str | None = "m3") -> bytes:
    """Exchange Online's NDR: a report whose Diagnostic-Code has the 550 5.1.10 text."""
    return _report(
        sender="Microsoft Outlook <MicrosoftExchange329e71ec@contoso.example>",
        subject="Undeliverable: Invoice",
        human="Your message to gone@contoso.example couldn't be delivered.",
        mta="DM6PR01MB1234.prod.outlook.com",
        recipients=[
            (rcpt, "failed", "5.1.10", "550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient "
             "not found by SMTP address lookup"),
        ],
        original=_returned_headers(mail_id, _id_of(mail_id), rcpt),
    )  # fmt: skip


def exim_bounce(rcpt: str = "missing@example.net", *, mail_id: str | None = "m4") -> bytes:
    """Exim's plain notice: X-Failed-Recipients and the original quoted in the text."""
    return (
        f"From: Mail Delivery System <Mailer-Daemon@mx.example.net>{CRLF}"
        f"To: sender@proxy.example{CRLF}Subject: Mail delivery failed: returning message to "
        f"sender{CRLF}X-Failed-Recipients: {rcpt}{CRLF}Auto-Submitted: auto-replied{CRLF}"
        f"Content-Type: text/plain; charset=us-ascii{CRLF}{CRLF}"
        "This message was created automatically by mail delivery software.\r\n\r\n"
        "A message that you sent could not be delivered to one or more of its\r\n"
        "recipients. This is a permanent error. The following address(es) failed:\r\n\r\n"
        f"  {rcpt}\r\n    host mx.example.net [192.0.2.1]\r\n"
        f"    SMTP error from remote mail server after RCPT TO:<{rcpt}>:\r\n"
        "    550 5.1.1 No such user here\r\n\r\n"
        "------ This is a copy of the message, including all the headers. ------\r\n\r\n"
        + _returned_headers(mail_id, _id_of(mail_id), rcpt)
    ).encode()


def qmail_bounce(rcpt: str = "olduser@example.com", *, mail_id: str | None = "m5") -> bytes:
    """qmail's QSBMF notice (cr.yp.to/proto/qsbmf.txt)."""
    return (
        f"From: MAILER-DAEMON@mail.example.com{CRLF}To: sender@proxy.example{CRLF}"
        f"Subject: failure notice{CRLF}{CRLF}"
        "Hi. This is the qmail-send program at mail.example.com.\r\n"
        "I'm afraid I wasn't able to deliver your message to the following addresses.\r\n"
        "This is a permanent error; I've given up. Sorry it didn't work out.\r\n\r\n"
        f"<{rcpt}>:\r\nSorry, no mailbox here by that name. (#5.1.1)\r\n\r\n"
        "--- Below this line is a copy of the message.\r\n\r\n"
        + _returned_headers(mail_id, _id_of(mail_id), rcpt)
    ).encode()


def auto_reply(subject: str = "Out of Office: Invoice", *, rfc3834: bool = True) -> bytes:
    """A vacation responder's answer (RFC 3834 §5 when ``rfc3834``)."""
    marker = "Auto-Submitted: auto-replied" if rfc3834 else "X-Autoreply: yes"
    return (
        f"From: someone@example.org{CRLF}To: sender@proxy.example{CRLF}Subject: {subject}"
        f"{CRLF}{marker}{CRLF}{CRLF}I am away until Monday.{CRLF}"
    ).encode()


def pec_receipt(
    receipt: str = "avvenuta-consegna",
    *,
    referenced: str = "<m6@proxy.example>",
    error: str = "nessuno",
    recipient: str = "dest@pec.example.it",
    daticert: bool = True,
) -> bytes:
    """A PEC receipt: X-Ricevuta, X-Riferimento-Message-ID and daticert.xml."""
    xml = (
        '<?xml version="1.0" encoding="UTF-8"?>\r\n'
        f'<postacert tipo="{receipt}" errore="{error}">\r\n'
        "<intestazione><mittente>sender@pec.proxy.example</mittente>"
        f'<destinatari tipo="certificato">{recipient}</destinatari>'
        "<oggetto>Invoice</oggetto></intestazione>\r\n"
        "<dati><gestore-emittente>Provider PEC S.p.A.</gestore-emittente>"
        '<data zona="+0100"><giorno>05/12/2026</giorno><ora>10:00:03</ora></data>'
        "<identificativo>opec21.20261205100003.1234@pec.example.it</identificativo>"
        f"<msgid>{referenced.replace('<', '&lt;').replace('>', '&gt;')}</msgid>"
        f"<consegna>{recipient}</consegna></dati>\r\n</postacert>\r\n"
    )
    boundary = "=_pec_boundary"
    attachment = (
        f"--{boundary}{CRLF}Content-Type: application/xml; name=daticert.xml{CRLF}"
        f"Content-Disposition: attachment; filename=daticert.xml{CRLF}{CRLF}{xml}{CRLF}"
        if daticert
        else ""
    )
    title = receipt.upper().replace("-", " ")
    return (
        f"From: posta-certificata@pec.example.it{CRLF}To: sender@pec.proxy.example{CRLF}"
        f"Subject: {title}: Invoice{CRLF}X-Ricevuta: {receipt}{CRLF}"
        f"X-Trasporto: posta-certificata{CRLF}X-Riferimento-Message-ID: {referenced}{CRLF}"
        f'MIME-Version: 1.0{CRLF}Content-Type: multipart/mixed; boundary="{boundary}"{CRLF}'
        f"{CRLF}--{boundary}{CRLF}Content-Type: text/plain{CRLF}{CRLF}Ricevuta di {receipt}"
        f"{CRLF}{attachment}--{boundary}--{CRLF}"
    ).encode()
