"""The command line as users meet it: streams, exit codes, bad input, formats."""

from __future__ import annotations

import csv
import inspect
import io
import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bookmark_enrich.cli import COMMANDS, app, load_commands
from bookmark_enrich.models import OutputRecord
from tests.helpers import CORE_ONLY, cli, invoke_cli, jsonl
from tests.servers.pages import PageServer

runner = CliRunner()


def test_stdout_holds_only_json_and_stderr_the_rest(pages: PageServer) -> None:
    urls = [pages.url("/article/cli1"), pages.url("/status/404"), "not a url"]
    proc = cli("run", "-", input="\n".join(urls) + "\n")
    assert proc.returncode == 1  # one bookmark failed
    records = jsonl(proc.stdout)
    assert [r["status"] for r in sorted(records, key=lambda r: r["position"])] == [
        "ok", "failed"]
    for record in records:
        OutputRecord.model_validate(record)  # the documented, versioned shape
    err = proc.stderr.decode()
    assert "skipped line 3: not an http(s) or file URL: 'not a url'" in err
    assert "Traceback" not in err
    assert "bookmark-enrich: done" in err  # the summary table


def test_all_ok_exits_zero_and_quiet_is_quiet(pages: PageServer) -> None:
    proc = invoke_cli("run", "-", "--quiet", input=pages.url("/article/q") + "\n")
    assert proc.returncode == 0
    assert proc.stderr == b""
    assert len(jsonl(proc.stdout)) == 1


def test_non_tty_progress_is_plain_log_lines(pages: PageServer) -> None:
    proc = invoke_cli("run", "-", input=pages.url("/article/log") + "\n")
    err = proc.stderr.decode()
    assert "run started: stdin (text)" in err
    assert "\x1b[" not in err  # no terminal escapes in a cron mail


def test_stdin_is_the_default_source_when_piped(pages: PageServer) -> None:
    proc = cli("run", "-q", input=pages.url("/article/default") + "\n")
    assert proc.returncode == 0
    assert jsonl(proc.stdout)[0]["url"] == pages.url("/article/default")


@pytest.mark.parametrize(
    ("content", "name", "expected"),
    [
        ('[{"url": "%s", "title": "Mine"}]', "b.json", "json"),
        ('{"url": "%s", "title": "Mine"}\n', "b.jsonl", "jsonl"),
        ('Title,Link\nMine,%s\n', "b.csv", "csv"),
        ("# my list\n%s\n", "b.txt", "text"),
        ('<!DOCTYPE NETSCAPE-Bookmark-file-1>\n<DL><p>\n<DT><H3>Dev</H3>\n<DL><p>\n'
         '<DT><A HREF="%s" ADD_DATE="1700000000" TAGS="a,b">Mine</A>\n</DL><p>\n</DL>\n',
         "b.html", "netscape"),
    ],
)
def test_every_input_format_keeps_original_fields(
    pages: PageServer, tmp_path: Path, content: str, name: str, expected: str
) -> None:
    url = pages.url(f"/article/{expected}")
    path = tmp_path / name
    path.write_text(content % url)
    for source in (str(path), "-"):  # by extension, and by content on stdin
        proc = invoke_cli("run", source, "-q", input=path.read_bytes() if source == "-" else None)
        assert proc.returncode == 0, proc.stderr
        (rec,) = jsonl(proc.stdout)
        assert rec["url"] == url
        assert rec["enrichment"]["title"].startswith("Tending")
        if expected != "text":
            user_title = rec["record"].get("title") or rec["record"].get("Title")
            assert user_title == "Mine"  # the user's own title is untouched
        if expected == "netscape":
            assert rec["record"]["folder"] == "Dev"
            assert rec["record"]["tags"] == ["a", "b"]  # Netscape TAGS read as a list
            assert rec["record"]["add_date"] == "1700000000"


def test_csv_url_field_override(pages: PageServer, tmp_path: Path) -> None:
    path = tmp_path / "odd.csv"
    path.write_text(f"name,where\nMine,{pages.url('/article/where')}\n")
    proc = invoke_cli("run", str(path), "-q")
    assert proc.returncode == 2
    assert b"CSV has no URL column" in proc.stderr
    proc = invoke_cli("run", str(path), "-q", "--url-field", "where")
    assert proc.returncode == 0
    assert jsonl(proc.stdout)[0]["record"] == {"name": "Mine", "where": pages.url(
        "/article/where")}


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (["run", "/no/such/file.json"], None, "no such file"),
        (["run", "-", "--input-format", "text"], b"javascript:alert(1)\nhttp://\n",
         "no bookmark found in stdin (2 lines skipped"),
        (["run", "-"], bytes(range(256)) * 40, "binary data"),
        (["run", "-"], b"just some words\nnothing here\n", "unknown format"),
        (["run", "-", "--input-format", "yaml"], b"x", "unknown input format"),
        (["run", "-", "--format", "xml"], b"http://x.org\n", "unknown output format"),
    ],
)
def test_bad_input_is_one_line_exit_2(args: list[str], stdin: bytes | None,
                                      message: str) -> None:
    proc = invoke_cli(*args, input=stdin)
    err = proc.stderr.decode()
    assert proc.returncode == 2, err
    assert message in err
    assert "Traceback" not in err
    assert proc.stdout == b""


def test_unreadable_file_and_directory(tmp_path: Path) -> None:
    locked = tmp_path / "locked.txt"
    locked.write_text("http://example.org\n")
    locked.chmod(0)
    proc = invoke_cli("run", str(tmp_path))
    assert proc.returncode == 2 and b"is a directory" in proc.stderr
    import os

    if os.geteuid() != 0:  # root reads anything
        proc = invoke_cli("run", str(locked))
        assert proc.returncode == 2 and b"permission denied" in proc.stderr


def test_invalid_setting_names_the_setting_and_value() -> None:
    proc = invoke_cli("run", "-", input=b"http://x.org\n", env={"MAX_MEDIA_SIZE_MB": "lots"})
    assert proc.returncode == 2
    assert b"MAX_MEDIA_SIZE_MB='lots'" in proc.stderr
    assert b"Traceback" not in proc.stderr


def test_env_file_is_read_and_flags_win(pages: PageServer, tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("BOOKMARK_ENRICH_INCLUDE_TEXT=true\nBOOKMARK_ENRICH_RETRIES=0\n")
    proc = invoke_cli("run", "-", "-q", input=pages.url("/article/env") + "\n", cwd=tmp_path)
    assert "text" in jsonl(proc.stdout)[0]["enrichment"]
    proc = invoke_cli("run", "-", "-q", "--concurrency", "0", input=b"http://x.org\n", cwd=tmp_path)
    assert proc.returncode == 2 and b"--concurrency=0" in proc.stderr


def test_strict_makes_bad_records_fatal(pages: PageServer) -> None:
    proc = invoke_cli("run", "-", "--strict", "-q", input=f"{pages.url('/article/s')}\nnope\n")
    assert proc.returncode == 2
    assert b"line 2" in proc.stderr and b"--strict" in proc.stderr


def test_malformed_json_lines_are_reported_with_line_numbers(pages: PageServer) -> None:
    lines = [json.dumps({"url": pages.url("/article/j1")}), "{broken", "[1,2]",
             json.dumps({"title": "no url"}), json.dumps({"url": "ftp://x.org/f"}),
             json.dumps({"url": pages.url("/article/j2")})]
    proc = invoke_cli("run", "-", "-q", input="\n".join(lines) + "\n")
    assert proc.returncode == 1  # skipped records end the run with failures (issue 16)
    assert len(jsonl(proc.stdout)) == 2
    err = proc.stderr.decode()
    for n in (2, 3, 4, 5):
        assert f"line {n}:" in err


def test_output_file_json_and_csv(pages: PageServer, tmp_path: Path) -> None:
    urls = "\n".join([pages.url("/article/o1"), pages.url("/article/o2")]) + "\n"
    out = tmp_path / "out.json"
    proc = invoke_cli("run", "-", "-q", "-o", str(out), "--format", "json", input=urls)
    assert proc.returncode == 0 and proc.stdout == b""
    data = json.loads(out.read_text())
    assert len(data) == 2
    assert not list(tmp_path.glob(".out.json.*"))  # the temp file was renamed away
    proc = invoke_cli("run", "-", "-q", "--format", "csv", input=urls)
    rows = list(csv.DictReader(io.StringIO(proc.stdout.decode())))
    assert len(rows) == 2
    assert rows[0]["enrich_status"] == "ok"
    assert rows[0]["enrich_title"].startswith("Tending")


def test_schema_command_prints_the_output_schema() -> None:
    result = runner.invoke(app, ["schema"])
    assert result.exit_code == 0
    schema = json.loads(result.stdout)
    assert schema["title"] == "OutputRecord"
    assert "enrichment" in schema["properties"]


def test_cli_runner_and_version(pages: PageServer, monkeypatch: pytest.MonkeyPatch) -> None:
    for k, v in CORE_ONLY.items():
        monkeypatch.setenv(k, v)
    result = runner.invoke(app, ["run", "-", "-q"], input=pages.url("/article/cr") + "\n")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout.splitlines()[0])["status"] == "ok"
    assert runner.invoke(app, ["--version"]).stdout.startswith("bookmark-enrich ")


def test_help_lists_commands() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    assert "run" in result.stdout and "schema" in result.stdout


def test_the_root_index_matches_the_commands() -> None:
    # The root's --help lists COMMANDS without importing the command modules; each
    # entry must say what the command itself says, in the order the modules give.
    modules = dict.fromkeys(module for module, _, _ in COMMANDS.values())
    real = {name: cmd for module in modules for name, cmd in load_commands(module).items()}
    assert list(real) == list(COMMANDS)
    for name, cmd in real.items():
        short = inspect.cleandoc(cmd.short_help or cmd.help or "").split("\n\n")[0]
        assert (COMMANDS[name][1], " ".join(COMMANDS[name][2].split())) == (
            cmd.rich_help_panel, " ".join(short.split())), name


def test_terminal_gets_live_bars_and_stdout_stays_json(pages: PageServer) -> None:
    import os
    import pty
    import subprocess
    import sys
    import threading

    master, slave = pty.openpty()
    chunks: list[bytes] = []

    def drain() -> None:  # a terminal reads as the program writes
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:
                return
            if not data:
                return
            chunks.append(data)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    env = {**os.environ, **CORE_ONLY, "COLUMNS": "100", "TERM": "xterm"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "bookmark_enrich", "run", "-"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=slave, env=env)
    os.close(slave)
    out, _ = proc.communicate(
        ("\n".join(pages.url(f"/article/tty{i}") for i in range(3)) + "\n").encode(),
        timeout=60)
    reader.join(timeout=5)
    os.close(master)
    raw = b"".join(chunks).decode(errors="replace")
    screen = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", raw)
    assert proc.returncode == 0
    assert len(jsonl(out)) == 3
    assert "bookmarks" in screen and "3/?" in screen  # the overall bar (stdin: no total)
    assert "fetch" in screen and "extract" in screen  # a line per stage
    assert "\x1b[" in raw  # a live display, unlike the plain cron lines


def test_jsonl_with_a_broken_first_line_is_still_jsonl(pages: PageServer) -> None:
    data = "{\"url\": broken\n" + json.dumps({"url": pages.url("/article/after-broken")}) + "\n"
    proc = invoke_cli("run", "-", "-q", input=data)
    assert proc.returncode == 1, proc.stderr  # a skipped record is a failure
    assert b"line 1: invalid JSON" in proc.stderr
    assert len(jsonl(proc.stdout)) == 1
