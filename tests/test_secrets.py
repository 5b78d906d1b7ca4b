"""Secrets never reach output, logs or the cache, whichever setting carries them."""

from __future__ import annotations

from pathlib import Path

from tests.helpers import cli, invoke_cli
from tests.servers.pages import PageServer

SECRETS = {
    "LM_STUDIO_API_KEY": "sk-lmstudio-SECRET-1",
    "COBALT_API_KEY": "cobalt-SECRET-2",
    "S3_ACCESS_KEY": "access-SECRET-3",
    "S3_SECRET_KEY": "secret-SECRET-4",
}


def test_no_secret_in_stdout_stderr_cache_or_config(pages: PageServer, tmp_path: Path,
                                                    cache_path: Path) -> None:
    env = {**SECRETS, "BOOKMARK_ENRICH_SUMMARIZER": "builtin",
           "BOOKMARK_ENRICH_LLM_PROBE_URLS": "[]", "ENABLE_AI_SUMMARIZATION": "true"}
    # The run in a real process: whatever it logs reaches the streams checked here.
    run = cli("run", "-", "--keep-going", input=pages.url("/article/secret") + "\n", env=env)
    shown = invoke_cli("config", "show", env=env)
    dumped = invoke_cli("config", "show", "--json", env=env)
    cache_bytes = b"".join(p.read_bytes() for p in cache_path.parent.glob("cache.sqlite*"))
    assert run.stdout, run.stderr
    assert shown.returncode == 0 and dumped.returncode == 0
    for value in SECRETS.values():
        for where, data in (("stdout", run.stdout), ("stderr", run.stderr),
                            ("config show", shown.stdout + dumped.stdout),
                            ("cache", cache_bytes)):
            assert value.encode() not in data, f"{value} leaked into {where}"
