"""The report page: one HTML file, written section by section as the figures are read.

Everything from bookmarks, pages or settings goes through :func:`~.charts.esc`;
only ``http(s)`` URLs become links (``javascript:`` and the like stay text). The
page reads without JavaScript: the script only adds the failures table's filters.
"""

from __future__ import annotations

import datetime as dt
import shlex
from collections.abc import Iterable
from typing import Any, TextIO

from .._version import __version__
from ..cache import ResultCache
from ..reports import dead_bookmarks
from .assets import CSP, SCRIPT, STYLE
from .charts import bar_chart, column_chart, esc, table
from .collect import (
    Scope,
    failed_rows,
    failure_count,
    failure_reasons,
    host_figures,
    overview,
    stage_table,
    timeline,
)
from .collection import collection, llm_figures, summarizers

__all__ = ["render", "render_empty"]

_SECTIONS = (("overview", "Overview"), ("stages", "Stages"), ("failures", "Failures"),
             ("dead", "Dead links"), ("time", "Over time"), ("collection", "The collection"),
             ("llm", "LLM"))
_MAX_COLUMNS = 90


def _when(ts: float | None) -> str:
    if not ts:
        return "—"
    return dt.datetime.fromtimestamp(ts).astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")


def _head(out: TextIO, title: str) -> None:
    out.write(
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{esc(CSP)}">'
        '<meta name="referrer" content="no-referrer">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<meta name="generator" content="bookmark-enrich {esc(__version__)}">'
        f"<title>{esc(title)}</title><style>{STYLE}</style></head><body><main>")


def _foot(out: TextIO) -> None:
    out.write(f"</main><script>{SCRIPT}</script></body></html>\n")


def render_empty(out: TextIO, cache_path: str, now: float) -> None:
    """The page for a cache with nothing in it yet."""
    _head(out, "bookmark-enrich report: nothing yet")
    out.write(f"<h1>bookmark-enrich report</h1><p>Nothing to report yet: the cache "
              f"<code>{esc(cache_path)}</code> holds no run. Enrich something first, "
              "for example <code>bookmark-enrich run bookmarks.html</code>, then run "
              f"<code>bookmark-enrich report</code> again.</p>"
              f'<p class="muted">Generated {esc(_when(now))}.</p>')
    _foot(out)


def _link(url: str | None) -> str:
    text = esc(url or "")
    if url and url.lower().startswith(("http://", "https://")):
        return f'<a href="{text}" rel="noopener noreferrer nofollow">{text}</a>'
    return text


def _cards(items: Iterable[tuple[str, object]]) -> str:
    return '<div class="cards">' + "".join(
        f'<div class="card"><b>{esc(v)}</b><span>{esc(k)}</span></div>' for k, v in items
    ) + "</div>"


def _overview(out: TextIO, doc: dict[str, Any]) -> None:
    c = doc["counts"]
    run = doc["run"]
    out.write('<section id="overview"><h2>Overview</h2>')
    cards = [("bookmarks", f"{c['total']:,}"), ("ok", f"{c['ok']:,}"),
             ("partial", f"{c['partial']:,}"), ("failed", f"{c['failed']:,}")]
    if run is not None:
        cards.append(("cached", f"{c['cached']:,}"))
    else:
        cards.append(("runs", f"{doc['runs']:,}"))
    cards += [("wall time", f"{doc['wall_seconds']:,.1f} s"),
              ("throughput", f"{doc['rate']:,.1f}/s" if doc["rate"] else "—")]
    if c.get("issues"):
        cards.append(("bad input records", f"{c['issues']:,}"))
    out.write(_cards(cards))
    if run is not None:
        out.write(table(("", ""), [
            ("source", run["source"]), ("format", run["format"]), ("status", run["status"]),
            ("started", _when(run["started_at"])), ("finished", _when(run["finished_at"]))],
            caption=f"Run {run['id']}", numeric_from=9))
    if doc["summarizers"]:
        out.write(table(("summarizer", "model", "pages"),
                        [(r["summarizer"], r["model"] or "—", r["count"])
                         for r in doc["summarizers"]], caption="Summarizer and model",
                        numeric_from=2))
    if doc["options"]:
        out.write("<details><summary>Settings of this run (secrets masked)</summary>"
                  + table(("setting", "value"), [(k, v if not isinstance(v, list) else
                                                   ", ".join(map(str, v)) or "—")
                                                  for k, v in doc["options"].items()],
                          numeric_from=9) + "</details>")
    out.write("</section>")


def _stages(out: TextIO, rows: list[dict[str, Any]], scoped: bool) -> None:
    out.write('<section id="stages"><h2>Stages</h2>')
    if not rows:
        out.write('<p class="empty">No stage results.</p></section>')
        return
    heads = ["stage", "ok", "skipped", "failed", *(["cached"] if scoped else []),
             "median ms", "p95 ms", "retries"]
    out.write(table(heads, [
        (r["stage"], r["ok"], r["skipped"], r["failed"], *([r["cached"]] if scoped else []),
         "—" if r["median_ms"] is None else r["median_ms"],
         "—" if r["p95_ms"] is None else r["p95_ms"], r["retries"]) for r in rows]))
    if scoped:
        out.write('<p class="muted">Durations and retries are this run\'s own work; '
                  "cached results came from earlier runs.</p>")
    out.write("</section>")


def _retry_command(stage: str, reason: str, cache_path: str) -> str:
    return shlex.join(["bookmark-enrich", "retry", "--stage", stage, "--reason", reason,
                       "--cache", cache_path])


def _failures(out: TextIO, cache: ResultCache, scope: Scope, cache_path: str,
              limit: int, failing: list[dict[str, Any]]) -> None:
    out.write('<section id="failures"><h2>Failures</h2>')
    reasons = failure_reasons(cache, scope)
    if not reasons:
        out.write('<p class="empty">No failures.</p></section>')
        return
    out.write(bar_chart("Failures by stage and reason",
                        [(f"{r['stage']}: {r['reason']}", r["count"]) for r in reasons],
                        unit="failures", css="s-bad"))
    out.write("<h3>Retry a group</h3>" + "".join(
        f"<p>{esc(r['stage'])} / {esc(r['reason'])} ({r['count']:,}): "
        f"<code>{esc(_retry_command(r['stage'], r['reason'], cache_path))}</code></p>"
        for r in reasons))
    out.write("<h3>Hosts with the most failures</h3>")
    out.write('<div class="scroll"><table><thead><tr><th scope="col">host</th>'
              '<th scope="col" class="num">failures</th><th scope="col" class="num">bookmarks'
              '</th><th scope="col">reasons</th><th scope="col">state</th></tr></thead><tbody>')
    for h in failing:
        reasons_text = ", ".join(f"{r} ({n})" for r, n in h["reasons"])
        state = '<span class="dead">dead</span>' if h["dead"] else ""
        out.write(f"<tr><td>{esc(h['host'])}</td><td class=num>{h['failures']:,}</td>"
                  f"<td class=num>{h['bookmarks']:,}</td><td>{esc(reasons_text)}</td>"
                  f"<td>{state}</td></tr>")
    out.write('</tbody></table></div><p class="muted">Dead: no page of the host could be '
              "fetched, and its name did not resolve, it refused connections or timed out.</p>")
    _failure_table(out, cache, scope, limit)
    out.write("</section>")


def _failure_table(out: TextIO, cache: ResultCache, scope: Scope, limit: int) -> None:
    total = failure_count(cache, scope)
    out.write("<h3>Failed bookmarks</h3>")
    out.write('<div class="filters" id="failure-filters" hidden>'
              '<label>Stage<select id="f-stage"><option value="">all</option></select></label>'
              '<label>Reason<select id="f-reason"><option value="">all</option></select>'
              '</label><label>Text<input id="f-text" type="search"></label>'
              '<span id="f-count" class="muted"></span></div>')
    out.write('<div class="scroll"><table id="failed-bookmarks"><thead><tr><th scope="col">URL</th>'
              '<th scope="col">title</th><th scope="col">stage</th><th scope="col">reason</th>'
              '<th scope="col">message</th></tr></thead><tbody>')
    for row in failed_rows(cache, scope, limit):
        out.write(f'<tr data-stage="{esc(row["stage"])}" data-reason="{esc(row["reason"])}">'
                  f"<td>{_link(row['url'])}</td><td>{esc(row['title'] or '')}</td>"
                  f"<td>{esc(row['stage'])}</td><td>{esc(row['reason'])}</td>"
                  f"<td>{esc(row['message'] or '')}</td></tr>")
    out.write("</tbody></table></div>")
    if total > limit:
        out.write(f'<p class="muted">The first {limit:,} of {total:,} failures; '
                  "<code>bookmark-enrich runs --failed --limit N</code> lists them all.</p>")


def _dead(out: TextIO, cache: ResultCache, scope: Scope, limit: int) -> None:
    """Dead bookmarks, each rescued from a web archive or not: what to replace or delete."""
    out.write('<section id="dead"><h2>Dead links</h2>')
    rows = dead_bookmarks(cache, scope.window() if scope.run is not None else None)
    shown: list[dict[str, Any]] = []
    dead = rescued = 0
    for row in rows:  # counted in full, listed up to the limit
        dead += 1
        rescued += row["rescued"]
        if len(shown) < limit:
            shown.append(row)
    if not dead:
        out.write('<p class="empty">No dead links.</p></section>')
        return
    out.write(_cards([("dead", f"{dead:,}"), ("rescued from an archive", f"{rescued:,}"),
                      ("not rescued", f"{dead - rescued:,}")]))
    out.write('<div class="scroll"><table id="dead-bookmarks"><thead><tr>'
              '<th scope="col">URL</th><th scope="col">reason</th><th scope="col">rescued</th>'
              '<th scope="col">first seen dead</th><th scope="col">last seen dead</th>'
              "</tr></thead><tbody>")
    for row in shown:
        snapshot = (f"{_link(row['snapshot_url'])} ({esc(row['snapshot_timestamp'] or '')})"
                    if row["rescued"] else '<span class="dead">no</span>')
        out.write(f"<tr><td>{_link(row['url'])}</td><td>{esc(row['reason'])}</td>"
                  f"<td>{snapshot}</td><td>{esc(row['first_seen_dead'] or '—')}</td>"
                  f"<td>{esc(row['last_seen_dead'] or '—')}</td></tr>")
    out.write("</tbody></table></div>")
    if dead > limit:
        out.write(f'<p class="muted">The first {limit:,} of {dead:,} dead links; '
                  "<code>bookmark-enrich dead</code> lists them all.</p>")
    out.write('<p class="muted">Dead: the page answered 404 or 410, its name no longer '
              "resolves, its host refuses connections, or it is parked. Rescued: the text, "
              "summary and tags come from the archive's snapshot.</p></section>")


def _over_time(out: TextIO, cache: ResultCache, scope: Scope) -> None:
    out.write('<section id="time"><h2>Over time</h2>')
    if scope.run is not None:
        minutes = timeline(cache, scope)
        width = max(1, -(-(minutes[-1]["minute"] + 1) // _MAX_COLUMNS)) if minutes else 1
        done: dict[int, list[int]] = {}
        for m in minutes:
            slot = done.setdefault(m["minute"] // width, [0, 0])
            slot[0] += m["done"] - m["failed"]
            slot[1] += m["failed"]
        slots = range(max(done) + 1) if done else range(0)
        unit = "minute" if width == 1 else f"{width} minutes"
        out.write(column_chart(
            f"Bookmarks completed per {unit}", [f"{s * width}" for s in slots],
            [("without failure", [done.get(s, [0, 0])[0] for s in slots], "s-ok"),
             ("with a failure", [done.get(s, [0, 0])[1] for s in slots], "s-bad")],
            label_head="minute"))
    runs = [r for r in scope.history if r.get("total") is not None]
    if scope.run is None:
        out.write(column_chart(
            "Bookmarks per run", [str(r["id"]) for r in runs],
            [("ok", [int(r["ok"] or 0) for r in runs], "s-ok"),
             ("partial", [int(r["partial"] or 0) for r in runs], "s-warn"),
             ("failed", [int(r["failed"] or 0) for r in runs], "s-bad")], label_head="run"))
    out.write("</section>")


def _collection(out: TextIO, cache: ResultCache, scope: Scope,
                sites: list[dict[str, Any]]) -> None:
    doc = collection(cache, scope)
    out.write('<section id="collection"><h2>The collection</h2>')
    pairs = [(r["name"], r["count"]) for r in doc["tags"]]
    out.write(bar_chart("Top tags", pairs, unit="bookmarks", css="s-bar"))
    out.write(bar_chart("Top keywords", [(r["name"], r["count"]) for r in doc["keywords"]],
                        unit="bookmarks", css="s-bar"))
    out.write("<h3>Tags seen together</h3>" + (table(
        ("tag", "with", "bookmarks"), [(p["first"], p["second"], p["count"])
                                       for p in doc["pairs"]], numeric_from=2)
        if doc["pairs"] else '<p class="empty">No tag pairs yet.</p>'))
    out.write(bar_chart("Languages", [(r["name"], r["count"]) for r in doc["languages"]],
                        unit="pages", css="s-bar"))
    out.write(bar_chart("Sites", [(s["site"], s["bookmarks"]) for s in sites],
                        unit="bookmarks", css="s-bar"))
    out.write(bar_chart("Content types", [(r["name"], r["count"])
                                          for r in doc["content_types"]],
                        unit="pages", css="s-bar"))
    out.write(bar_chart("Words per page", [(r["name"], r["count"]) for r in doc["words"]],
                        unit="pages", css="s-bar"))
    out.write("<h3>Media stored</h3>" + (table(
        ("back end", "files", "bytes"), [(m["backend"], m["files"], m["bytes"])
                                         for m in doc["media"]])
        if doc["media"] else '<p class="empty">No media stored.</p>'))
    out.write("</section>")


def _llm(out: TextIO, cache: ResultCache, scope: Scope) -> None:
    f = llm_figures(cache, scope)
    out.write('<section id="llm"><h2>LLM</h2>')
    if not f["calls"]:
        out.write('<p class="empty">No LLM calls recorded.</p></section>')
        return
    out.write(_cards([
        ("calls", f"{f['calls']:,}"), ("tokens in", f"{f['tokens_in']:,}"),
        ("tokens out", f"{f['tokens_out']:,}"),
        ("latency median", f"{(f['latency_median_ms'] or 0) / 1000:.2f} s"),
        ("latency p95", f"{(f['latency_p95_ms'] or 0) / 1000:.2f} s"),
        ("JSON-in-prompt calls", f"{f['prompt_json']:,}"), ("repairs", f"{f['repairs']:,}"),
        ("chunked pages", f"{f['chunked']:,}")]))
    out.write('<p class="muted">Tokens as the server reported them (0 when it does not). '
              "JSON-in-prompt: calls made without structured output, as the server "
              "refused it.</p></section>")


def render(out: TextIO, cache: ResultCache, scope: Scope, *, cache_path: str,
           failures_limit: int, now: float) -> None:
    """The whole report for ``scope``, written to ``out`` as it is read."""
    doc = {**overview(cache, scope), "summarizers": summarizers(cache, scope)}
    _head(out, f"bookmark-enrich report: {doc['scope']}")
    out.write(f"<h1>bookmark-enrich report: {esc(doc['scope'])}</h1>"
              f'<p class="muted">Cache <code>{esc(cache_path)}</code>, generated '
              f"{esc(_when(now))}.</p><nav>"
              + " ".join(f'<a href="#{k}">{esc(v)}</a>' for k, v in _SECTIONS) + "</nav>")
    _overview(out, doc)
    _stages(out, stage_table(cache, scope), scope.run is not None)
    sites, failing = host_figures(cache, scope)
    _failures(out, cache, scope, cache_path, failures_limit, failing)
    _dead(out, cache, scope, failures_limit)
    _over_time(out, cache, scope)
    _collection(out, cache, scope, sites)
    _llm(out, cache, scope)
    _foot(out)
