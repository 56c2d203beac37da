"""IMAP access to the mailboxes the proxy reads: bounces and PEC receipts."""

from mail_proxy.imap.mailbox import (
    HANDLED_KEYWORD,
    IMAP_FAILURES,
    ImapError,
    ImapMailbox,
    MailboxConfig,
)

__all__ = ["HANDLED_KEYWORD", "IMAP_FAILURES", "ImapError", "ImapMailbox", "MailboxConfig"]
