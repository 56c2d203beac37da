"""An .eml file taken apart into the add-messages entry the proxy queues."""

from __future__ import annotations

import base64
from email.message import EmailMessage
from pathlib import Path

import pytest

from mail_proxy.cli.eml import EmlError, eml_files, eml_message


def _write(path: Path, message: EmailMessage) -> Path:
    path.write_bytes(bytes(message))
    return path


def _rich_message() -> EmailMessage:
    message = EmailMessage()
    message["From"] = "Alice <alice@acme.test>"
    message["To"] = "Bob <bob@example.com>, carol@example.com"
    message["Cc"] = "dave@example.com"
    message["Reply-To"] = "support@acme.test"
    message["Subject"] = "Invoice 42"
    message["Message-ID"] = "<inv-42@acme.test>"
    message["X-Campaign"] = "spring"
    message.set_content("Plain text")
    message.add_alternative("<p>HTML <b>text</b></p>", subtype="html")
    message.add_attachment(
        b"%PDF-1.4 data", maintype="application", subtype="pdf", filename="i.pdf"
    )
    return message


def test_fields_body_attachments_and_headers(tmp_path: Path) -> None:
    entry = eml_message(_write(tmp_path / "a.eml", _rich_message()))
    assert entry["from"] == "Alice <alice@acme.test>"
    assert entry["to"] == ["Bob <bob@example.com>", "carol@example.com"]
    assert entry["cc"] == ["dave@example.com"] and entry["reply_to"] == ["support@acme.test"]
    assert entry["subject"] == "Invoice 42" and entry["message_id"] == "<inv-42@acme.test>"
    assert entry["content_type"] == "html" and "<b>text</b>" in entry["body"]
    [attachment] = entry["attachments"]
    assert attachment["filename"] == "i.pdf" and attachment["mime_type"] == "application/pdf"
    assert base64.b64decode(attachment["storage_path"].removeprefix("base64:")) == b"%PDF-1.4 data"
    # Only the header fields the proxy does not write itself travel as extra headers.
    assert entry["headers"] == {"X-Campaign": "spring"}


def test_plain_message_and_stable_id(tmp_path: Path) -> None:
    message = EmailMessage()
    message["To"] = "bob@example.com"
    message["Subject"] = "Hi"
    message.set_content("Just text")
    path = _write(tmp_path / "p.eml", message)
    entry = eml_message(path)
    assert entry["content_type"] == "plain" and entry["body"] == "Just text\n"
    assert "from" not in entry and "attachments" not in entry
    assert eml_message(path)["id"] == entry["id"]  # the same file is the same message
    message.replace_header("Subject", "Hi again")
    assert eml_message(_write(tmp_path / "q.eml", message))["id"] != entry["id"]


def test_not_a_message_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "x.eml"
    path.write_text("just some words\n")
    with pytest.raises(EmlError, match="no To header"):
        eml_message(path)


def test_a_folder_gives_its_eml_files_in_order(tmp_path: Path) -> None:
    for name in ("b.eml", "a.EML", "notes.txt"):
        (tmp_path / name).write_text("")
    assert [p.name for p in eml_files(tmp_path)] == ["a.EML", "b.eml"]
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(EmlError, match=r"no \.eml file"):
        eml_files(empty)
