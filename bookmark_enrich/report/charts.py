"""Inline SVG charts, each with its data as a table beside it.

Hand-written SVG keeps the page one file with no library to inline: bars and
columns are all the report needs. Colours come from the page's CSS classes, so
the charts follow dark mode and print. Every label is escaped here.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from html import escape

__all__ = ["Series", "bar_chart", "column_chart", "esc", "table"]

_ids = itertools.count(1)
_ROW = 22
_LABEL_W = 150
_WIDTH = 420
"""Narrow enough that the text stays legible when a phone scales the chart down."""


def esc(value: object) -> str:
    """Text for HTML (content and attributes): ``<``, ``>``, ``&`` and quotes escaped."""
    return escape("" if value is None else str(value), quote=True)


def _short(label: str, limit: int = 24) -> str:
    return label if len(label) <= limit else label[: limit - 1] + "…"


def _fmt(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"


def table(headers: Sequence[str], rows: Sequence[Sequence[object]], *,
          caption: str | None = None, numeric_from: int = 1) -> str:
    """An HTML table; columns from ``numeric_from`` on are right-aligned numbers."""
    head = "".join(f'<th scope="col"{" class=num" if i >= numeric_from else ""}>{esc(h)}</th>'
                   for i, h in enumerate(headers))
    body = "".join(
        "<tr>" + "".join(
            f'<td{" class=num" if i >= numeric_from else ""}>'
            f"{esc(_fmt(v) if isinstance(v, int | float) and not isinstance(v, bool) else v)}"
            "</td>" for i, v in enumerate(row)) + "</tr>"
        for row in rows)
    cap = f"<caption>{esc(caption)}</caption>" if caption else ""
    return (f'<div class="scroll"><table>{cap}<thead><tr>{head}</tr></thead>'
            f"<tbody>{body}</tbody></table></div>")


def bar_chart(title: str, rows: Sequence[tuple[str, float]], *, unit: str = "count",
              css: str = "bar") -> str:
    """Horizontal bars (one per label) and the same data as a table."""
    if not rows or not any(v for _, v in rows):
        return f'<h3>{esc(title)}</h3><p class="empty">Nothing to show.</p>'
    cid = f"chart{next(_ids)}"
    top = max(v for _, v in rows) or 1
    plot = _WIDTH - _LABEL_W - 50
    height = len(rows) * _ROW + 8
    parts = [f'<svg class="chart" viewBox="0 0 {_WIDTH} {height}" role="img" '
             f'aria-labelledby="{cid}" preserveAspectRatio="xMinYMin meet">'
             f'<title id="{cid}">{esc(title)}</title>']
    for i, (label, value) in enumerate(rows):
        y = 4 + i * _ROW
        w = max(1.0, plot * value / top) if value else 0
        parts.append(
            f'<text class="lbl" x="{_LABEL_W - 6}" y="{y + 15}" text-anchor="end">'
            f"{esc(_short(str(label)))}</text>"
            f'<rect class="{css}" x="{_LABEL_W}" y="{y + 3}" width="{w:.1f}" height="{_ROW - 6}">'
            f"<title>{esc(label)}: {esc(_fmt(value))}</title></rect>"
            f'<text class="val" x="{_LABEL_W + w + 4:.1f}" y="{y + 15}">{esc(_fmt(value))}</text>')
    parts.append("</svg>")
    return (f'<h3>{esc(title)}</h3><figure class="pair"><div>{"".join(parts)}</div>'
            "<figcaption>" + table(("", unit), [(label, value) for label, value in rows],
                                   caption=f"{title} (data)") + "</figcaption></figure>")


Series = tuple[str, Sequence[float], str]
"""(name, one value per column, CSS class)."""


def column_chart(title: str, labels: Sequence[str], series: Sequence[Series], *,
                 label_head: str = "") -> str:
    """Stacked columns (runs, minutes) and the same data as a table."""
    if not labels:
        return f'<h3>{esc(title)}</h3><p class="empty">Nothing to show.</p>'
    cid = f"chart{next(_ids)}"
    totals = [sum(s[1][i] for s in series) for i in range(len(labels))]
    top = max(totals) or 1
    height, base, left = 200, 176, 44
    step = (_WIDTH - left - 8) / len(labels)
    bar = max(1.0, step * 0.8)
    parts = [f'<svg class="chart" viewBox="0 0 {_WIDTH} {height}" role="img" '
             f'aria-labelledby="{cid}" preserveAspectRatio="xMinYMin meet">'
             f'<title id="{cid}">{esc(title)}</title>'
             f'<line class="axis" x1="{left}" y1="{base}" x2="{_WIDTH - 4}" y2="{base}"/>'
             f'<text class="val" x="{left - 4}" y="14" text-anchor="end">{esc(_fmt(top))}</text>'
             f'<text class="val" x="{left - 4}" y="{base}" text-anchor="end">0</text>']
    for i, label in enumerate(labels):
        x = left + i * step + (step - bar) / 2
        y = float(base)
        for name, values, css in series:
            h = (base - 10) * values[i] / top
            if h > 0:
                y -= h
                parts.append(f'<rect class="{css}" x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" '
                             f'height="{h:.1f}"><title>{esc(label)}: {esc(name)} '
                             f"{esc(_fmt(values[i]))}</title></rect>")
    every = max(1, len(labels) // 8)
    for i in range(0, len(labels), every):
        parts.append(f'<text class="val" x="{left + i * step + step / 2:.1f}" y="{base + 16}" '
                     f'text-anchor="middle">{esc(_short(str(labels[i]), 10))}</text>')
    parts.append("</svg>")
    legend = "".join(f'<span class="key {css}">{esc(name)}</span>' for name, _, css in series)
    rows = [(label, *(s[1][i] for s in series)) for i, label in enumerate(labels)]
    return (f'<h3>{esc(title)}</h3><figure class="pair"><div>{"".join(parts)}'
            f'<p class="legend">{legend}</p></div><figcaption>'
            + table((label_head, *(s[0] for s in series)), rows, caption=f"{title} (data)")
            + "</figcaption></figure>")
