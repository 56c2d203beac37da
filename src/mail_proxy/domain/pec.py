"""PEC (Posta Elettronica Certificata) receipts: which one, for which message.

A PEC provider answers every certified message with signed receipts (DPR 68/2005,
technical rules of DM 2 November 2005). Each carries ``X-Ricevuta`` naming its kind,
``X-Riferimento-Message-ID`` naming the message it is about, and a
``daticert.xml`` attachment whose ``postacert`` element repeats the kind
(``tipo``), the error (``errore``), the time and the recipient. The header decides
the kind; the XML gives the details reported to the tenant.

The XML comes from outside: it is read only when small (``MAX_DATICERT``), a
document declaring a DOCTYPE (the door to entity expansion) is refused, and every
value kept is made storable and bounded.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from email.message import Message
from typing import Any

from mail_proxy.domain.models import EventType
from mail_proxy.domain.text import storable

MAX_DATICERT = 64 * 1024
_VALUE_LIMIT = 300

#: ``X-Ricevuta`` values → the event reported. "mancata-consegna" is what the
#: notice is called ("avviso di mancata consegna"); its header says errore-consegna.
RECEIPT_EVENTS = {
    "accettazione": EventType.PEC_ACCEPTANCE,
    "non-accettazione": EventType.PEC_ERROR,
    "presa-in-carico": EventType.PEC_RELAY,
    "avvenuta-consegna": EventType.PEC_DELIVERY,
    "errore-consegna": EventType.PEC_ERROR,
    "mancata-consegna": EventType.PEC_ERROR,
    "preavviso-errore-consegna": EventType.PEC_ERROR,
    "rilevazione-virus": EventType.PEC_ERROR,
}
_DATI_FIELDS = ("gestore-emittente", "identificativo", "msgid", "consegna", "errore-esteso")


@dataclass(frozen=True, slots=True)
class PecReceipt:
    """A recognised receipt: ``referenced_id`` is the Message-ID it is about."""

    event: EventType
    receipt: str
    referenced_id: str | None
    details: dict[str, Any] = field(default_factory=dict)


def pec_receipt(mail: Message) -> PecReceipt | None:
    """The receipt ``mail`` is, or None when it is no PEC receipt."""
    receipt = " ".join(str(mail.get("X-Ricevuta", "")).split()).lower()
    event = RECEIPT_EVENTS.get(receipt)
    if event is None:
        return None
    details: dict[str, Any] = {"receipt": receipt}
    transport = mail.get("X-Trasporto")
    if transport is not None:
        details["transport"] = storable(str(transport), _VALUE_LIMIT)
    details |= daticert(mail)
    referenced = mail.get("X-Riferimento-Message-ID") or details.get("msgid")
    referenced_id = None if referenced is None else storable(str(referenced).strip(), 255)
    return PecReceipt(event, receipt, referenced_id, details)


def daticert(mail: Message) -> dict[str, Any]:
    """The certified data of the ``daticert.xml`` attachment; empty when it is
    missing, too big or not well-formed XML (the header alone still counts)."""
    for part in mail.walk():
        if (part.get_filename() or "").lower() != "daticert.xml":
            continue
        data = part.get_payload(decode=True)
        if not isinstance(data, bytes) or len(data) > MAX_DATICERT or b"<!DOCTYPE" in data:
            return {}
        try:
            root = ET.fromstring(data)  # bounded, DOCTYPE refused above
        except ET.ParseError:
            return {}
        return _postacert(root)
    return {}


def _postacert(root: ET.Element) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for name in ("tipo", "errore"):
        if root.get(name):
            found[name] = storable(root.get(name), _VALUE_LIMIT)
    for name in _DATI_FIELDS:
        element = root.find(f"dati/{name}")
        if element is not None and element.text:
            found[name.replace("-", "_")] = storable(element.text.strip(), _VALUE_LIMIT)
    day, hour = root.find("dati/data/giorno"), root.find("dati/data/ora")
    if day is not None and hour is not None:
        zone = root.find("dati/data")
        found["date"] = storable(
            f"{day.text or ''} {hour.text or ''} {'' if zone is None else zone.get('zona', '')}",
            _VALUE_LIMIT,
        ).strip()
    recipients = [storable(e.text, _VALUE_LIMIT) for e in root.findall("intestazione/destinatari")]
    if recipients:
        found["recipients"] = [r for r in recipients if r][:20]
    return found
