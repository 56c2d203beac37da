"""E-mail addresses as clients send them: RFC 5322 mailboxes and address-lists.

``to``/``cc``/``bcc`` arrive as a list or one comma-separated string (RFC 5322 §3.4
address-list); each mailbox is ``a@b.example`` or ``Name <a@b.example>``. Addresses
are checked for syntax only (no DNS). An ASCII dot-atom local part (RFC 5322 §3.4.1,
RFC 5321 §4.5.3.1 lengths) is checked by a regular expression and its domain once
per domain (cached): plain RFC 1035 host names by a regular expression, IDN and
domain literals by email-validator, whose IDNA processing costs ~200 µs a domain.
Only other local parts (quoted, non-ASCII) send the whole address through
email-validator. A batch of 100,000 recipients over a few domains thus costs
regular expressions, not 20 s of IDNA. Special-use domains
that never receive mail (``.invalid``, ``.localhost``, ``.local``; RFC 6761) are
refused, ``.test`` is accepted. CR/LF is refused as header injection (RFC 5322 §2.2).
"""

from __future__ import annotations

import re
from email.headerregistry import Address
from email.utils import parseaddr
from functools import lru_cache
from typing import NamedTuple

from email_validator import (
    SPECIAL_USE_DOMAIN_NAMES,
    EmailNotValidError,
    ValidatedEmail,
    validate_email,
)

MAX_LOCAL_PART = 64
MAX_ADDRESS = 254
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_PLAIN_ADDRESS = re.compile(rf"^({_ATOM}(?:\.{_ATOM})*)@((?:{_LABEL}\.)*{_LABEL})$")
_DOT_ATOM = re.compile(rf"^{_ATOM}(?:\.{_ATOM})*$")
_HOSTNAME = re.compile(rf"^(?:{_LABEL}\.)*{_LABEL}$")


class Mailbox(NamedTuple):
    """One RFC 5322 mailbox; ``name`` is empty when there is none, unencoded otherwise."""

    name: str
    address: str


class InvalidAddress(ValueError):
    """The text says which field is wrong and why, as a rejection reason."""


def addr_spec(addr: str, field: str) -> str:
    """The normalised addr-spec (domain lower-cased); InvalidAddress otherwise."""
    local, at, domain = addr.rpartition("@")
    if at and len(local) <= MAX_LOCAL_PART and _DOT_ATOM.match(local):
        ascii_domain, shown_domain = _domain(domain)
        if ascii_domain is not None and len(local) + 1 + len(ascii_domain) <= MAX_ADDRESS:
            return f"{local}@{shown_domain}"
        raise InvalidAddress(f"invalid address in {field}: {addr[:80]!r}")
    checked = _validated(addr)
    if checked is None:
        raise InvalidAddress(f"invalid address in {field}: {addr[:80]!r}")
    return checked.normalized


@lru_cache(maxsize=4096)
def _domain(domain: str) -> tuple[str | None, str]:
    """(ASCII form or None when invalid, normalised form) of an address's domain."""
    if _HOSTNAME.match(domain):
        lowered = domain.lower()
        if "xn--" not in lowered and not _special_use(lowered):
            return lowered, lowered
    probe = _validated(f"x@{domain}")
    if probe is None:
        return None, domain
    return probe.ascii_domain or domain, probe.normalized.rpartition("@")[2]


def _validated(addr: str) -> ValidatedEmail | None:
    try:
        return validate_email(
            addr,
            check_deliverability=False,
            globally_deliverable=False,
            test_environment=True,
            allow_quoted_local=True,
            allow_domain_literal=True,
        )
    except EmailNotValidError:
        return None


def _special_use(domain: str) -> bool:
    return any(domain == name or domain.endswith("." + name) for name in SPECIAL_USE_DOMAIN_NAMES)


def ascii_domain(addr: str) -> str:
    """The domain of a checked address as ASCII (IDNA, RFC 5890), for header text
    such as a Message-ID that cannot carry Unicode."""
    domain = addr.rpartition("@")[2]
    return _domain(domain)[0] or domain


def format_mailbox(name: str, addr: str) -> str:
    """``addr`` or ``Name <addr>``, the name quoted when RFC 5322 needs it (unencoded).

    ``Address`` refuses a non-ASCII local part (RFC 6532 allows it): such a
    mailbox gets its name quoted here instead."""
    if not name:
        return addr
    if addr.rpartition("@")[0].isascii():
        return str(Address(display_name=name, addr_spec=addr))
    quoted = name.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{quoted}" <{addr}>'


def split_addresses(text: str) -> list[str]:
    """Split an RFC 5322 address-list at commas outside quotes, <...> and (comments)."""
    parts: list[str] = []
    current: list[str] = []
    quoted = escaped = False
    depth = 0
    for char in text:
        if escaped:
            escaped = False
        elif char == "\\" and quoted:
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif not quoted and char in "<(":
            depth += 1
        elif not quoted and char in ">)":
            depth = max(0, depth - 1)
        elif char == "," and not quoted and depth == 0:
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    parts.append("".join(current))
    return [part.strip() for part in parts if part.strip()]


def parse_mailboxes(value: object, field: str) -> list[Mailbox]:
    """A list of strings or one comma-separated string → checked mailboxes."""
    if value is None or value == "":
        return []
    if isinstance(value, str):
        items = [value]
    elif isinstance(value, list) and all(isinstance(item, str) for item in value):
        items = value
    else:
        raise InvalidAddress(f"invalid {field}: expected a list or a comma-separated string")
    mailboxes: list[Mailbox] = []
    for item in items:
        mailboxes.extend(_mailboxes_in(item, field))
    return mailboxes


@lru_cache(maxsize=4096)
def _mailboxes_in(item: str, field: str) -> tuple[Mailbox, ...]:
    """One address-list string checked; cached because batches repeat senders and
    recipients and the syntax check is the costliest step of message validation."""
    if "\r" in item or "\n" in item:
        raise InvalidAddress(f"header injection: CR/LF in {field}")
    if "\x00" in item:
        raise InvalidAddress(f"invalid {field}: contains a NUL character")
    mailboxes: list[Mailbox] = []
    for part in split_addresses(item):
        name, addr = ("", part) if _PLAIN_ADDRESS.match(part) else parseaddr(part)
        if not addr:
            raise InvalidAddress(f"invalid address in {field}: {part[:80]!r}")
        mailboxes.append(Mailbox(name, addr_spec(addr, field)))
    return tuple(mailboxes)


def single_mailbox(value: object, field: str) -> Mailbox:
    found = parse_mailboxes(value, field)
    if len(found) != 1:
        raise InvalidAddress(f"invalid {field}: expected exactly one address")
    return found[0]


def normalise_sender(value: str, field: str = "default_from") -> str:
    """One mailbox (``a@x.example`` or ``Name <a@x.example>``), normalised."""
    return format_mailbox(*single_mailbox(value, field))
