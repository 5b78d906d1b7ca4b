"""Reports as tables on stdout (``--json`` prints the same data as JSON instead)."""

from __future__ import annotations

import json
from typing import Any

import typer
from rich.table import Table
from rich.text import Text

from .console import out

__all__ = ["print_bookmark", "print_doctor", "print_rows", "print_settings", "print_status"]


def cell(value: Any) -> Text:
    """A table cell as plain text (URLs and messages may hold [brackets])."""
    return Text("" if value is None else str(value))


def when(iso: str | None) -> str:
    """ISO time as ``2026-11-29 03:31`` for tables (JSON keeps the full form)."""
    return "" if not iso else iso[:16].replace("T", " ")


def _pct(rate: float | None) -> str:
    return "" if rate is None else f"{rate * 100:.1f}%"


def print_doctor(report: Any) -> None:
    t = Table(title="bookmark-enrich doctor", title_justify="left", header_style="bold")
    t.add_column("check", overflow="fold", max_width=32)
    t.add_column("status", no_wrap=True)
    t.add_column("detail", overflow="fold", ratio=1)
    t.add_column("latency", justify="right", no_wrap=True)
    style = {"ok": "green", "warn": "yellow", "fail": "red", "skip": "dim"}
    for c in report.checks:
        status = c.status if c.required or c.status != "fail" else "fail (optional)"
        t.add_row(Text(c.name), Text(status, style=style[c.status]), Text(c.detail),
                  "" if c.latency_ms is None else f"{c.latency_ms:.0f} ms")
    out.print(t)


def print_status(doc: dict[str, Any]) -> None:
    t = Table(title=f"runs ({doc['cache']})", title_justify="left", header_style="bold")
    for col in ("id", "started", "duration", "source", "status", "total", "ok", "cached",
                "failed", "rate"):
        left = col in ("started", "source", "status")
        t.add_column(col, justify="left" if left else "right", no_wrap=col != "source",
                     overflow="fold", min_width=12 if col == "source" else None)
    for r in doc["runs"]:
        dur = "" if r["duration_s"] is None else f"{r['duration_s']:.1f}s"
        rate = "" if r["rate"] is None else f"{r['rate']:.1f}/s"
        t.add_row(str(r["id"]), when(r["started"]), dur, cell(r["source"]), cell(r["status"]),
                  cell(r["total"]), cell(r["ok"]), cell(r["cached"]),
                  cell((r["failed"] or 0) + (r["partial"] or 0)), rate)
    out.print(t)
    s = Table(title="stages (whole cache)", title_justify="left", header_style="bold")
    for col in ("stage", "ok", "failed", "skipped", "success"):
        s.add_column(col, justify="left" if col == "stage" else "right")
    for r in doc["stages"]:
        s.add_row(cell(r["stage"]), str(r["ok"]), str(r["failed"]), str(r["skipped"]),
                  _pct(r["success_rate"]))
    out.print(s)
    f = Table(title="top failure reasons", title_justify="left", header_style="bold")
    for col in ("stage", "reason", "count"):
        f.add_column(col, justify="right" if col == "count" else "left")
    for r in doc["reasons"]:
        f.add_row(cell(r["stage"]), cell(r["reason"]), str(r["count"]))
    out.print(f)
    dead = doc.get("dead") or {}
    if dead.get("dead"):
        out.print(f"dead links: {dead['dead']} ({dead['rescued']} rescued from the web "
                  f"archive, {dead['not_rescued']} not); `bookmark-enrich dead` lists them",
                  soft_wrap=True)


def print_bookmark(doc: dict[str, Any]) -> None:
    b = doc["bookmark"]
    for label in ("url", "normalized", "key", "source", "position", "first_seen", "last_seen"):
        if b.get(label) is not None:
            out.print(Text.assemble((label, "bold"), f": {b[label]}"), soft_wrap=True)
    t = Table(title="stages", title_justify="left", header_style="bold")
    for col in ("stage", "status", "reason", "error", "attempts", "ms", "finished", "run"):
        t.add_column(col, overflow="fold", no_wrap=col != "error",
                     min_width=12 if col == "error" else None)
    for s in doc["stages"]:
        t.add_row(cell(s["stage"]), cell(s["status"]), cell(s["reason"]), cell(s["error"]),
                  cell(s["attempts"]), cell(s["duration_ms"]), when(s["finished"]),
                  cell(s["run_id"]))
    out.print(t)
    out.print("[bold]enrichment[/]:")
    typer.echo(json.dumps(doc["enrichment"], ensure_ascii=False, indent=2, default=str))
    if b.get("record") is not None:
        out.print("[bold]record[/]:")
        typer.echo(json.dumps(b["record"], ensure_ascii=False, indent=2, default=str))


def print_rows(rows: list[dict[str, Any]], cols: tuple[str, ...]) -> None:
    """Runs or failed bookmarks, one row each (long URLs and errors fold)."""
    t = Table(header_style="bold")
    wide = ("url", "error", "source")
    for col in cols:
        t.add_column(col, overflow="fold", no_wrap=col not in wide,
                     min_width=12 if col in wide else None)
    for r in rows:
        t.add_row(*(when(r[col]) if col in ("started", "finished") else cell(r.get(col))
                    for col in cols))
    out.print(t)


def print_settings(rows: list[dict[str, Any]]) -> None:
    t = Table(header_style="bold")
    for col in ("setting", "variable", "value", "from"):
        t.add_column(col, overflow="fold")
    for r in rows:
        value = r["value"]
        shown = json.dumps(value) if isinstance(value, list | dict | bool) or value is None \
            else str(value)
        t.add_row(r["setting"], r["env"], cell(shown), r["origin"])
    out.print(t)
