"""Per-message validation of add-messages: normalised payloads and rejection reasons."""

from __future__ import annotations

from typing import Any

import pytest

from mail_proxy.domain.addresses import InvalidAddress, normalise_sender, split_addresses
from mail_proxy.domain.models import Account, NewMessage, Priority, Tenant
from mail_proxy.domain.outgoing import OutgoingMessage
from mail_proxy.domain.priority import InvalidPriority, parse_priority, resolve_priority
from mail_proxy.domain.validation import (
    Rejection,
    ValidationContext,
    new_message,
    recipient_count,
    unstorable_field,
    validate_message,
)

ACME = Tenant(id="acme")
MAIN = Account(
    id="main", tenant_id="acme", host="smtp.example.com", default_from="acme@example.com"
)
SPARE = Account(id="spare", tenant_id="acme", host="smtp.example.com")


def ctx(**overrides: Any) -> ValidationContext:
    values: dict[str, Any] = {
        "tenants": {"acme": ACME, "solo": Tenant(id="solo"), "none": Tenant(id="none")},
        "accounts": {
            "acme": [MAIN, SPARE],
            "solo": [Account(id="only", tenant_id="solo", host="h.example.com")],
            "none": [],
        },
        "token_tenant_id": "acme",
    }
    values.update(overrides)
    return ValidationContext(**values)


def message(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": "m1",
        "account_id": "main",
        "to": "ann@example.com",
        "subject": "Hello",
        "body": "Hi",
    }
    base.update(overrides)
    return {key: value for key, value in base.items() if value is not ...}


def accepted(raw: Any, context: ValidationContext | None = None) -> NewMessage:
    """The message as the queue would store it."""
    result = validate_message(raw, context or ctx())
    assert isinstance(result, OutgoingMessage), result
    return new_message(result)


def reason(raw: Any, context: ValidationContext | None = None) -> str:
    result = validate_message(raw, context or ctx())
    assert isinstance(result, Rejection), result
    return result.reason


def test_minimal_message_is_normalised() -> None:
    """A minimal message gets tenant from the token, sender from the account, defaults."""
    new = accepted(message())
    assert (new.tenant_id, new.id, new.account_id, new.priority) == ("acme", "m1", "main", 2)
    assert new.payload["from"] == "acme@example.com"
    assert new.payload["to"] == ["ann@example.com"]
    assert new.payload["cc"] == [] and new.payload["bcc"] == []
    assert new.payload["content_type"] == "plain"
    assert new.payload["attachments"] == [] and new.payload["headers"] == {}


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("to", "a@example.com, B <b@example.com>", ["a@example.com", "B <b@example.com>"]),
        ("to", ["a@example.com", "c@example.com"], ["a@example.com", "c@example.com"]),
        ("to", '"Doe, John" <j@example.com>', ['"Doe, John" <j@example.com>']),
        ("to", "a@example.com,", ["a@example.com"]),
        ("cc", "x@Example.COM", ["x@example.com"]),
    ],
)
def test_address_lists_accept_lists_and_comma_strings(
    field: str, value: Any, expected: list[str]
) -> None:
    """RFC 5322 address-lists: a list or one comma string, display names kept."""
    assert accepted(message(**{field: value})).payload[field] == expected


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"id": ...}, "missing field: id"),
        ({"id": ""}, "missing field: id"),
        ({"to": ...}, "missing field: to"),
        ({"to": ""}, "missing field: to"),
        ({"subject": ...}, "missing field: subject"),
        ({"to": "not-an-address"}, "invalid address in to"),
        ({"to": "a@example.com b@example.com"}, "invalid address in to"),
        ({"cc": ["ok@example.com", "bad@"]}, "invalid address in cc"),
        ({"to": "x@host.invalid"}, "invalid address in to"),
        ({"to": 42}, "invalid to"),
        ({"from": "a@example.com, b@example.com"}, "invalid from: expected exactly one"),
        ({"account_id": "ghost"}, "unknown account: ghost"),
        ({"tenant_id": "acme", "account_id": 7}, "invalid account_id"),
        ({"priority": 9}, "invalid priority"),
        ({"priority": "urgent"}, "invalid priority"),
        ({"priority": True}, "invalid priority"),
        ({"content_type": "rtf"}, "invalid content_type"),
        ({"batch_code": "x" * 65}, "invalid batch_code"),
        ({"deferred_ts": -1}, "invalid deferred_ts"),
        ({"deferred_ts": "soon"}, "invalid deferred_ts"),
        ({"headers": ["X-A: 1"]}, "invalid headers"),
        ({"headers": {"Bad Name": "1"}}, "invalid header name"),
        ({"headers": {"X-A": {"nested": 1}}}, "invalid value of header X-A"),
        ({"body": 12}, "invalid body"),
    ],
)
def test_rejections_name_the_problem(overrides: dict[str, Any], expected: str) -> None:
    """Every refused message carries a reason that says which field is wrong."""
    assert reason(message(**overrides)).startswith(expected)


@pytest.mark.parametrize(
    "overrides",
    [
        {"subject": "Hi\r\nBcc: victim@example.com"},
        {"to": "a@example.com\nBcc: victim@example.com"},
        {"from": "x@example.com\r\n"},
        {"from_name": "Evil\nX-Injected: 1"},
        {"headers": {"X-Tag": "a\r\nBcc: victim@example.com"}},
        {"message_id": "<a@b>\nX: y"},
        {"reply_to": ["r@example.com\r\nX: y"]},
        {"id": "m1\r\nX: y"},
        {"attachments": [{"filename": "a\r\n.txt", "storage_path": "base64:aGk="}]},
    ],
)
def test_cr_lf_anywhere_in_a_header_is_header_injection(overrides: dict[str, Any]) -> None:
    """RFC 5322 §2.2: CRLF ends a field, so CR/LF in a header value is refused."""
    assert "header injection" in reason(message(**overrides))


def test_rejection_keeps_the_message_id() -> None:
    """The caller can match a rejection to its message by id."""
    result = validate_message(message(id="m9", to="bad"), ctx())
    assert result == Rejection("m9", result.reason if isinstance(result, Rejection) else "")


def test_non_object_message_is_rejected_without_id() -> None:
    """A list entry that is not a JSON object is refused on its own."""
    assert validate_message(["m1"], ctx()) == Rejection(None, "message must be a JSON object")


def test_tenant_and_account_resolution() -> None:
    """Admin must name the tenant; the only account (or the marked one) is the default."""
    admin = ctx(token_tenant_id=None)
    assert reason(message(), admin) == "missing field: tenant_id"
    assert reason(message(tenant_id="ghost"), admin) == "unknown tenant: ghost"
    solo = accepted(message(tenant_id="solo", account_id=..., **{"from": "s@example.com"}), admin)
    assert solo.account_id == "only"
    assert "no default account" in reason(message(account_id=...))
    marked = {"acme": [MAIN, Account(id="def", tenant_id="acme", host="h", is_default=True)]}
    chosen = accepted(message(account_id=..., **{"from": "a@example.com"}), ctx(accounts=marked))
    assert chosen.account_id == "def"
    assert "no default account" in reason(message(tenant_id="none", account_id=...), admin)
    assert reason(message(tenant_id="solo")) == "Token not authorized for this tenant"


def test_sender_defaults_and_display_name() -> None:
    """``from`` falls back to the account's sender; ``from_name`` sets the display name."""
    assert accepted(message(from_name="ACME Billing")).payload["from"] == (
        "ACME Billing <acme@example.com>"
    )
    assert accepted(message(**{"from": "Old <o@example.com>"}, from_name="New")).payload[
        "from"
    ] == ("New <o@example.com>")
    assert "no default sender" in reason(message(account_id="spare"))


def test_html_flag_and_content_type_aliases() -> None:
    """``html: true`` (sent by existing clients) means an html body; MIME names work too."""
    assert accepted(message(html=True)).payload["content_type"] == "html"
    assert accepted(message(content_type="text/html")).payload["content_type"] == "html"
    assert accepted(message(html=True, content_type="plain")).payload["content_type"] == "plain"


def test_unknown_fields_are_dropped_and_known_ones_kept() -> None:
    """Unknown fields are ignored; every known field lands in the payload."""
    new = accepted(
        message(
            surprise="x",
            bcc=["hidden@example.com"],
            reply_to="r@example.com",
            return_path="Bounce <bounce@example.com>",
            headers={"X-Campaign": 7},
            message_id="<m1@acme.example>",
            deferred_ts=1_700_000_000.5,
            batch_code="spring",
        )
    )
    assert "surprise" not in new.payload
    assert new.payload["return_path"] == "bounce@example.com"
    assert new.payload["headers"] == {"X-Campaign": "7"}
    assert new.payload["reply_to"] == "r@example.com"
    assert (new.deferred_ts, new.batch_code) == (1_700_000_000, "spring")


def test_priority_precedence() -> None:
    """Message priority beats the batch default, which beats the instance default."""
    assert accepted(message(priority="immediate"), ctx(batch_priority=Priority.LOW)).priority == 0
    assert accepted(message(), ctx(batch_priority=Priority.LOW)).priority == 3
    assert accepted(message(), ctx(instance_priority=1)).priority == 1
    assert accepted(message(priority="1")).priority == 1


@pytest.mark.parametrize(
    ("value", "expected"),
    [(0, Priority.IMMEDIATE), ("HIGH", Priority.HIGH), (" medium ", Priority.MEDIUM), ("3", 3)],
)
def test_parse_priority_accepts_numbers_and_labels(value: object, expected: int) -> None:
    """Priority is 0-3 or a label, case and spaces ignored."""
    assert parse_priority(value) == expected


@pytest.mark.parametrize("value", [-1, 4, "4", "", None, 1.5, False, "critical"])
def test_parse_priority_refuses_anything_else(value: object) -> None:
    """Out-of-range numbers, floats, booleans and unknown labels are refused."""
    with pytest.raises(InvalidPriority):
        parse_priority(value)


def test_resolve_priority_falls_back_in_order() -> None:
    """None at every level gives the instance default."""
    assert resolve_priority(None, None, 2) == Priority.MEDIUM


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"filename": "a.txt", "storage_path": "base64:aGk="}, "base64"),
        ({"filename": "a.txt", "storage_path": "https://files.example.com/a"}, "http_url"),
        ({"filename": "a.txt", "storage_path": "/srv/files/a"}, "filesystem"),
        ({"filename": "a.txt", "storage_path": "doc-42"}, "endpoint"),
        ({"filename": "a.txt", "storage_path": "aGk=", "fetch_mode": "base64"}, "base64"),
    ],
)
def test_attachment_fetch_mode_is_inferred(spec: dict[str, Any], expected: str) -> None:
    """Protocol rule: base64: prefix, http(s) URL, absolute path, otherwise endpoint."""
    context = ctx(filesystem_roots=("/srv/files",))
    payload = accepted(message(attachments=[spec]), context).payload
    assert payload["attachments"][0]["fetch_mode"] == expected


@pytest.mark.parametrize(
    ("roots", "path", "reason"),
    [
        ((), "/srv/files/a.pdf", "filesystem attachments are disabled"),
        (("/srv/files",), "/srv/files/../secret", "without '..'"),
        (("/srv/files",), "/srv/filesystem/a.pdf", "outside the folders"),
        (("/srv/files",), "/etc/passwd", "outside the folders"),
        (("/srv/files", "/data/out/"), "/data/other/a.pdf", "outside the folders"),
    ],
)
def test_filesystem_attachment_outside_the_roots_is_rejected_at_submission(
    roots: tuple[str, ...], path: str, reason: str
) -> None:
    """Without GMP_ATTACHMENT_BASE_DIR, or naming a path outside it, the message is
    rejected when submitted (not accepted and then failed), saying why."""
    spec = {"filename": "a.pdf", "storage_path": path}
    result = validate_message(message(attachments=[spec]), ctx(filesystem_roots=roots))
    assert isinstance(result, Rejection)
    assert "attachment 0" in result.reason and reason in result.reason


def test_filesystem_attachment_under_any_root_is_accepted() -> None:
    """Several roots: a path under the second one passes."""
    spec = {"filename": "a.pdf", "storage_path": "/data/out/2024/a.pdf"}
    accepted(message(attachments=[spec]), ctx(filesystem_roots=("/srv/files", "/data/out/")))


@pytest.mark.parametrize(
    "spec",
    [
        "a.txt",
        {"storage_path": "base64:aGk="},
        {"filename": "a.txt"},
        {"filename": "a.txt", "storage_path": "base64:***"},
        {"filename": "a.txt", "storage_path": "x", "fetch_mode": "ftp"},
        {"filename": "a.txt", "storage_path": "x", "fetch_mode": "http_url"},
        {"filename": "a.txt", "storage_path": "base64:aGk=", "mime_type": "text"},
        {"filename": "a.txt", "storage_path": "base64:aGk=", "content_md5": "xyz"},
        {"filename": "a.txt", "storage_path": "doc", "auth": {"method": "bearer"}},
        {"filename": "a.txt", "storage_path": "doc", "auth": {"method": "basic", "user": "u"}},
        {"filename": "a.txt", "storage_path": "doc", "auth": {"method": "digest"}},
    ],
)
def test_malformed_attachment_specs_are_refused(spec: Any) -> None:
    """Each malformed attachment spec is refused with 'attachment spec invalid'."""
    assert reason(message(attachments=[spec])).startswith("attachment spec invalid")


def test_attachment_extras_are_kept() -> None:
    """mime_type, content_md5 (lower-cased) and auth survive normalisation."""
    spec = {
        "filename": "a.pdf",
        "storage_path": "doc-1",
        "mime_type": "application/pdf",
        "content_md5": "A" * 32,
        "auth": {"method": "bearer", "token": "t"},
    }
    stored = accepted(message(attachments=[spec])).payload["attachments"][0]
    assert stored["content_md5"] == "a" * 32
    assert stored["auth"] == {"method": "bearer", "token": "t"}


def test_normalise_sender() -> None:
    """An account's default sender must be exactly one mailbox."""
    assert normalise_sender("Shop <SHOP@Example.com>") == "Shop <SHOP@example.com>"
    with pytest.raises(InvalidAddress):
        normalise_sender("a@example.com, b@example.com")


ADDRESS_SAMPLES = [
    "a@b.com", "A.B@Ex.COM", "a..b@c.com", ".a@c.com", "a@-b.com", "a@b", "a@123",
    "x@y.test", "x@localhost", "x@mail.local", "a@b..com", "a+tag@b.co.uk", "o'brien@x.ie",
    "a@b_c.com", "a" * 65 + "@b.com", "us{er}@x.com", "a@xn--bcher-kva.ch", "a@xn--zz.com",
    "a@" + "b" * 64 + ".com", "a@b.com.", "a@x.onion", '"quoted x"@c.com', "a@[127.0.0.1]",
    "üser@exämple.com", "user@büro.example", "User@Büro.Example", "a@[IPv6:::1]",
    "a@münchen.localhost", "ok@xn--mnchen-3ya.de", "a@bü..ro.com", "a@-bü.com",
    "a" * 64 + "@" + ("b" * 60 + ".") * 3 + "bü.com", "a" * 60 + "@" + ("b" * 60 + ".") * 3 + "com",
    "a" * 64 + "@" + ("b" * 61 + ".") * 3 + "ab",
]  # fmt: skip


@pytest.mark.parametrize("address", ADDRESS_SAMPLES)
def test_fast_address_check_agrees_with_email_validator(address: str) -> None:
    """The regex fast path accepts and normalises exactly what email-validator does."""
    from email_validator import EmailNotValidError, validate_email

    try:
        expected: list[str] | None = [
            validate_email(
                address,
                check_deliverability=False,
                globally_deliverable=False,
                test_environment=True,
                allow_quoted_local=True,
                allow_domain_literal=True,
            ).normalized
        ]
    except EmailNotValidError:
        expected = None
    result = validate_message(message(to=[address]), ctx())
    got = new_message(result).payload["to"] if isinstance(result, OutgoingMessage) else None
    assert got == expected


def test_split_addresses_respects_quotes_brackets_and_comments() -> None:
    """Commas inside quoted names, <...> or (comments) do not split an address-list."""
    text = 'a@x.com, "Doe, J" <j@x.com>, (x, y) c@x.com,, "a\\"b, c" <q@x.com>'
    assert split_addresses(text) == [
        "a@x.com", '"Doe, J" <j@x.com>', "(x, y) c@x.com", '"a\\"b, c" <q@x.com>'
    ]  # fmt: skip


LONE = "\ud800"


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"id": "m" + LONE}, "id"),
        ({"subject": "Hi " + LONE}, "subject"),
        ({"body": "text " + LONE}, "body"),
        ({"headers": {"X-Tag": LONE}}, "headers.X-Tag"),
        ({"headers": {"X-" + LONE: "v"}}, "headers"),
        ({"to": ["ann@example.com", "b" + LONE + "@example.com"]}, "to[1]"),
        ({"from_name": "Shop " + "\udc80"}, "from_name"),
        (
            {"attachments": [{"filename": "a" + LONE + ".pdf", "storage_path": "base64:aGk="}]},
            "attachments[0].filename",
        ),
        ({"batch_code": LONE}, "batch_code"),
    ],
)
def test_lone_surrogates_reject_the_message_naming_the_field(
    overrides: dict[str, Any], field: str
) -> None:
    """JSON escapes like "\\ud800" decode to text no UTF-8 store can hold."""
    result = validate_message(message(**overrides), ctx())
    assert isinstance(result, Rejection)
    assert result.reason == f"invalid text in {field}: not valid Unicode (lone surrogate)"
    assert result.id == (None if field == "id" else "m1")


@pytest.mark.parametrize(
    ("value", "found"),
    [
        ("fine", None),
        ({"a": ["x", {"b": "ok"}]}, None),
        (LONE, ""),
        ({"a": ["x", {"b": LONE}]}, "a[1].b"),
        ({LONE: "v"}, "a field name"),
        ({"h": {LONE: "v"}}, "h"),
        ([1, 2.5, None, True, "x" + LONE], "[4]"),
        ("\U0001f600 paired surrogates decode to one character", None),
    ],
)
def test_unstorable_field(value: object, found: str | None) -> None:
    assert unstorable_field(value) == found


@pytest.mark.parametrize(
    ("messages", "count"),
    [
        ([], 0),
        ([{"to": "a@x.example"}], 1),
        ([{"to": "a@x.example, b@x.example", "cc": ["c@x.example"], "bcc": "d@x.example"}], 4),
        ([{"to": ["a@x.example, b@x.example", "c@x.example"]}], 3),
        ([{"to": ["a@x.example"]}, {"to": ["b@x.example"] * 5}], 6),
        (["not an object", {"to": 5}, {"to": [5]}], 1),
        ([{"subject": "no recipients"}], 0),
    ],
)
def test_recipient_count(messages: list[Any], count: int) -> None:
    assert recipient_count(messages) == count


def test_attachment_file_names_longer_than_255_are_refused() -> None:
    """The reason names the attachment and its start; 255 characters still pass."""
    spec = {"filename": "r" * 252 + ".pdf", "storage_path": "base64:aGk="}
    refused = reason(message(attachments=[{"filename": "ok.txt", "storage_path": "x"}, spec]))
    assert refused == (
        f"attachment spec invalid: attachment 1 filename {'r' * 40!r}… "
        "is longer than 255 characters"
    )
    fits = {"filename": "r" * 251 + ".pdf", "storage_path": "base64:aGk="}
    assert (
        accepted(message(attachments=[fits])).payload["attachments"][0]["filename"]
        == fits["filename"]
    )
