"""How the console shows values: times, payloads and the activity charts (SVG)."""

from __future__ import annotations

import datetime
import json
from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

#: How much of a payload a task page shows; the rest is cut (the size is always shown).
TEXT_CUT_BYTES = 64 * 1024
HEX_CUT_BYTES = 4 * 1024
US = 1_000_000


def when(us: int | None) -> str:
    """A time as a UTC date, to the second."""
    if not us:
        return "–"
    moment = datetime.datetime.fromtimestamp(us / US, datetime.UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def relative(us: int | None, now_us: int) -> str:
    """A time as "in 3 min" or "2 h ago"."""
    if not us:
        return ""
    seconds = (us - now_us) / US
    span = abs(seconds)
    if span < 1:
        return "now"
    amount = _span(span)
    return f"in {amount}" if seconds > 0 else f"{amount} ago"


def _span(seconds: float) -> str:
    """3 s, 4 min, 1 h 59 min, 2 d 3 h: the largest unit, and the next one below an hour's precision."""
    units = (("d", 86400), ("h", 3600), ("min", 60), ("s", 1))
    for index, (unit, size) in enumerate(units):
        if seconds >= size:
            whole, rest = divmod(int(seconds), size)
            if size >= 3600:
                below, below_size = units[index + 1]
                if rest // below_size:
                    return f"{whole} {unit} {rest // below_size} {below}"
            return f"{whole} {unit}"
    return "0 s"


def size(count: int) -> str:
    if count < 1024:
        return f"{count} bytes"
    if count < 1024 * 1024:
        return f"{count / 1024:.1f} KiB"
    return f"{count / 1024 / 1024:.2f} MiB"


@dataclass(frozen=True)
class PayloadView:
    #: json, text or binary
    kind: str
    text: str
    size: int
    #: How many bytes are not shown.
    cut: int


def payload_view(payload: bytes) -> PayloadView:
    """The payload as pretty JSON, UTF-8 text, or a hex dump, cut to a readable length."""
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is None or any(ord(c) < 32 and c not in "\t\n\r" for c in text):
        head = payload[:HEX_CUT_BYTES]
        return PayloadView("binary", hex_dump(head), len(payload), len(payload) - len(head))
    try:
        pretty = json.dumps(json.loads(text), indent=2, ensure_ascii=False) if text.strip() else None
    except ValueError:
        pretty = None
    kind, whole = ("json", pretty) if pretty is not None else ("text", text)
    encoded = whole.encode()
    shown = encoded[:TEXT_CUT_BYTES].decode("utf-8", errors="ignore")
    return PayloadView(kind, shown, len(payload), len(encoded) - len(shown.encode()))


def hex_dump(data: bytes) -> str:
    """Sixteen bytes a line: offset, hex, and the printable ASCII."""
    lines = []
    for offset in range(0, len(data), 16):
        chunk = data[offset : offset + 16]
        hexes = " ".join(f"{byte:02x}" for byte in chunk)
        text = "".join(chr(byte) if 32 <= byte < 127 else "." for byte in chunk)
        lines.append(f"{offset:08x}  {hexes:<47}  {text}")
    return "\n".join(lines)


# -- charts ---------------------------------------------------------------------------

_WIDTH, _HEIGHT, _LEFT, _BOTTOM, _TOP = 300, 120, 30, 20, 10


def chart(title: str, values: Sequence[int | None], *, line: bool = False) -> Markup:
    """A small SVG chart of one value per minute over the last hour (oldest first).

    Bars for counts per minute, a step line for the depth; None is a minute without a
    value (drawn as nothing). The title and the largest value label it for screen readers.
    """
    known = [value for value in values if value is not None]
    top = max(known, default=0) or 1
    plot_w, plot_h = _WIDTH - _LEFT - 4, _HEIGHT - _BOTTOM - _TOP
    step = plot_w / max(len(values), 1)

    def y(value: int) -> float:
        return _TOP + plot_h - plot_h * value / top

    shapes: list[str] = []
    if line:
        points: list[str] = []
        for index, value in enumerate(values):
            if value is None:
                continue
            x0, x1 = _LEFT + index * step, _LEFT + (index + 1) * step
            points.append(f"{x0:.1f},{y(value):.1f} {x1:.1f},{y(value):.1f}")
        if points:
            shapes.append(f'<polyline class="line" points="{" ".join(points)}"/>')
    else:
        for index, value in enumerate(values):
            if not value:
                continue
            x = _LEFT + index * step + step * 0.15
            shapes.append(
                f'<rect class="bar" x="{x:.1f}" y="{y(value):.1f}" width="{step * 0.7:.1f}" '
                f'height="{plot_h * value / top:.1f}"><title>{value}</title></rect>'
            )
    total = sum(known)
    label = f"{title}: " + (f"at most {top} a minute, {total} in the hour" if not line else f"at most {top}")
    if not known:
        label = f"{title}: nothing in the last hour"
    axis = (
        f'<line class="axis" x1="{_LEFT}" y1="{_TOP + plot_h}" x2="{_WIDTH - 4}" y2="{_TOP + plot_h}"/>'
        f'<text class="tick" x="{_LEFT - 5}" y="{_TOP + 9}" text-anchor="end">{top if known else 0}</text>'
        f'<text class="tick" x="{_LEFT - 5}" y="{_TOP + plot_h}" text-anchor="end">0</text>'
        f'<text class="tick" x="{_LEFT}" y="{_HEIGHT - 3}">60 min ago</text>'
        f'<text class="tick" x="{_WIDTH - 4}" y="{_HEIGHT - 3}" text-anchor="end">now</text>'
    )
    svg = (
        f'<svg class="chart" viewBox="0 0 {_WIDTH} {_HEIGHT}" role="img" aria-label="{escape(label)}">'
        f"<title>{escape(label)}</title>{axis}{''.join(shapes)}</svg>"
    )
    return Markup(svg)


def depths(values: Sequence[int | None], current: int | None) -> list[int | None]:
    """Depth per minute: a minute without a change keeps the last known depth.

    Minutes before the first known depth are unknown, except that the current depth
    (from the stats) ends the line when the hour saw no change at all.
    """
    shown: list[int | None] = []
    last: int | None = None
    for value in values:
        last = value if value is not None else last
        shown.append(last)
    if shown and shown[-1] is None and current is not None:
        shown = [current if value is None else value for value in shown]
    return shown
