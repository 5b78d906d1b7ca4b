"""`search` and `similar`: find what was enriched (the work is in finder.py).

Results are data: JSON Lines on stdout when it is not a terminal, a table with
highlighted snippets when it is. Nothing found exits 1, as grep does.
"""

from __future__ import annotations

import csv
import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ..errors import EXIT_FAILURES
from .console import err, out, say
from .context import settings_from_ctx
from .exits import exits
from .group import CommandGroup
from .options import (
    OUTPUT,
    CacheOpt,
    EmbeddingModelOpt,
    EmbeddingUrlOpt,
    IncludeTextOpt,
    choice,
)

if TYPE_CHECKING:
    from ..finder import Finder, Found

__all__ = ["app", "prepare_index"]

app = CommandGroup()
PANEL = "Search"
SEARCH_FORMATS = ("table", "jsonl", "json", "csv")
CSV_COLUMNS = ("score", "url", "title", "site_name", "language", "tags", "summary",
               "snippet", "status")

QueryArg = Annotated[str, typer.Argument(
    help="Words (ANDed), \"a phrase\", -word, a OR b, prefix*; filters tag:, site:, lang:, "
    "status:, type:, since:, until:, run:.", show_default=False)]
ModeOpt = Annotated[str | None, typer.Option(
    "--mode", metavar="<mode>", parser=choice(("text", "semantic", "hybrid"), "search mode"),
    show_default=False, help="text (FTS5, bm25), semantic (embeddings) or hybrid (both, "
    "fused by rank) [default: hybrid when vectors and an embeddings server exist, else text]")]
LimitOpt = Annotated[int, typer.Option(
    "--limit", "-n", min=1, max=10_000, help="Most results to print.")]
SearchFormatOpt = Annotated[str | None, typer.Option(
    "--format", metavar="<format>", rich_help_panel=OUTPUT,
    parser=choice(SEARCH_FORMATS, "output format"), show_default=False,
    help="table, jsonl, json or csv [default: table on a terminal, else jsonl]")]
JsonFlag = Annotated[bool, typer.Option(
    "--json", rich_help_panel=OUTPUT, help="One JSON array (the records of `run`, plus "
    "score and snippet).")]
JsonlFlag = Annotated[bool, typer.Option(
    "--jsonl", rich_help_panel=OUTPUT, help="JSON Lines: one record per line.")]


def prepare_index(finder: Finder) -> None:
    """Bring the index up to date; a first build shows a bar on a terminal, a line elsewhere."""
    bar: dict[str, Any] = {}

    def on_build(pending: int) -> None:
        if err.is_terminal:
            from rich.progress import Progress

            progress = Progress(console=err, transient=True)
            progress.start()
            bar["progress"] = progress
            bar["task"] = progress.add_task("indexing for search", total=pending)
        elif pending >= 1000:
            say(f"search: indexing {pending} bookmarks…")

    def on_progress(done: int, total: int) -> None:
        if "progress" in bar:
            bar["progress"].update(bar["task"], completed=done, total=total)

    try:
        finder.prepare(on_progress, on_build)
    finally:
        if "progress" in bar:
            bar["progress"].stop()


def _format(fmt: str | None, as_json: bool, as_jsonl: bool) -> str:
    if as_json:
        return "json"
    if as_jsonl:
        return "jsonl"
    return fmt or ("table" if sys.stdout.isatty() else "jsonl")


def _print(found: list[Found], fmt: str) -> None:
    from ..records import csv_cell, dumps

    if fmt == "jsonl":
        for f in found:
            sys.stdout.write(dumps(f.record) + "\n")
    elif fmt == "json":
        sys.stdout.write(dumps([f.record for f in found], readable=True) + "\n")
    elif fmt == "csv":
        writer = csv.writer(sys.stdout)
        writer.writerow(CSV_COLUMNS)
        for f in found:
            e = f.record["enrichment"]
            values = {"score": f.record["score"], "url": f.record["url"],
                      "snippet": f.record["snippet"], "status": f.record["status"]}
            writer.writerow([csv_cell(values.get(c, e.get(c))) for c in CSV_COLUMNS])
    else:
        _table(found)
    sys.stdout.flush()


def _table(found: list[Found]) -> None:
    from rich.table import Table
    from rich.text import Text

    t = Table(header_style="bold", show_lines=True)
    t.add_column("#", justify="right", no_wrap=True)
    t.add_column("bookmark", ratio=2, overflow="fold")
    t.add_column("snippet", ratio=3, overflow="fold")
    for i, f in enumerate(found, start=1):
        e = f.record["enrichment"]
        who = Text(str(e.get("title") or f.record["url"]), style="bold")
        who.append("\n" + f.record["url"], style="dim")
        if e.get("tags"):
            who.append("\n" + " ".join("#" + t for t in e["tags"]), style="cyan")
        snip = Text(f.record["snippet"])
        for start, end in f.spans:
            snip.stylize("bold yellow", start, end)
        t.add_row(str(i), who, snip)
    out.print(t)


def _finish(found: list[Found], fmt: str) -> None:
    _print(found, fmt)
    if not found:
        raise typer.Exit(EXIT_FAILURES)


@app.command(rich_help_panel=PANEL)
@exits
def search(
    ctx: typer.Context,
    query: QueryArg,
    mode: ModeOpt = None,
    limit: LimitOpt = 20,
    fmt: SearchFormatOpt = None,
    as_json: JsonFlag = False,
    as_jsonl: JsonlFlag = False,
    include_text: IncludeTextOpt = False,
    cache: CacheOpt = None,
    embedding_url: EmbeddingUrlOpt = None,
    embedding_model: EmbeddingModelOpt = None,
) -> None:
    """Search the enriched bookmarks in the cache (exit 1 when nothing matches).

    Example: bookmark-enrich search 'sourdough starter tag:baking since:2024' --jsonl | jq .url
    """
    from ..finder import Finder

    with Finder(settings_from_ctx(ctx)) as finder:
        prepare_index(finder)
        found = finder.search(query, mode=mode, limit=limit)  # type: ignore[arg-type]
    _finish(found, _format(fmt, as_json, as_jsonl))


@app.command(rich_help_panel=PANEL)
@exits
def similar(
    ctx: typer.Context,
    url: Annotated[str, typer.Argument(help="A bookmark's URL, as in the cache.",
                                       show_default=False)],
    limit: LimitOpt = 10,
    fmt: SearchFormatOpt = None,
    as_json: JsonFlag = False,
    as_jsonl: JsonlFlag = False,
    include_text: IncludeTextOpt = False,
    cache: CacheOpt = None,
    embedding_url: EmbeddingUrlOpt = None,
    embedding_model: EmbeddingModelOpt = None,
) -> None:
    """The bookmarks nearest to one, by embeddings or shared words (exit 1 when none).

    Embeddings are used when the cache has them; otherwise the bookmark's rarest words.

    Example: bookmark-enrich similar https://example.com/post --limit 5
    """
    from ..finder import Finder

    with Finder(settings_from_ctx(ctx)) as finder:
        prepare_index(finder)
        found = finder.similar(url, limit=limit)
    _finish(found, _format(fmt, as_json, as_jsonl))
