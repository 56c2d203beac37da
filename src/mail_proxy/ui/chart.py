"""The overview's chart: messages per minute as bars, drawn server-side in SVG.

Geometry only (no styling beyond class names), so the stylesheet colours it in the
light and the dark scheme alike and no script is needed to see it.
"""

from __future__ import annotations

from dataclasses import dataclass

from mail_proxy.ports import MinuteCount

WIDTH = 720
HEIGHT = 160
AXIS = 18


@dataclass(frozen=True, slots=True)
class Bar:
    x: float
    width: float
    queued_y: float
    queued_h: float
    sent_y: float
    sent_h: float
    failed_y: float
    failed_h: float
    title: str


@dataclass(frozen=True, slots=True)
class Chart:
    width: int
    height: int
    bars: list[Bar]
    peak: int
    labels: list[tuple[float, str]]
    """(x, HH:MM) every hour, along the bottom."""

    @property
    def axis_y(self) -> int:
        return self.height - AXIS


def bars(minutes: list[MinuteCount]) -> Chart:
    """One bar per minute: its height the messages queued that minute, with the
    part already sent and the part failed drawn over it."""
    peak = max((m.queued for m in minutes), default=0)
    plot = HEIGHT - AXIS
    step = WIDTH / max(1, len(minutes))
    scale = plot / peak if peak else 0.0
    drawn, labels = [], []
    for i, m in enumerate(minutes):
        x = i * step
        queued_h, sent_h, failed_h = m.queued * scale, m.sent * scale, m.failed * scale
        drawn.append(
            Bar(
                x=round(x, 2),
                width=round(max(step - 1, 1), 2),
                queued_y=round(plot - queued_h, 2),
                queued_h=round(queued_h, 2),
                sent_y=round(plot - sent_h, 2),
                sent_h=round(sent_h, 2),
                failed_y=round(plot - sent_h - failed_h, 2),
                failed_h=round(failed_h, 2),
                title=f"{_clock(m.minute)}: {m.queued} queued, {m.sent} sent, {m.failed} failed",
            )
        )
        if m.minute % 60 == 0:
            labels.append((round(x, 2), _clock(m.minute)))
    return Chart(WIDTH, HEIGHT, drawn, peak, labels)


def _clock(minute: int) -> str:
    return f"{minute // 60 % 24:02d}:{minute % 60:02d}"
