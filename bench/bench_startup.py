"""Start-up and cached re-run benchmarks (issue 23). Prints figures; asserts nothing.

    python bench/bench_startup.py                      # this checkout
    python bench/bench_startup.py --checkout /work/main  # another checkout, same venv

(a) start-up of the quick commands (--version, --help, formats, config show, status,
    show): median wall and CPU seconds of fresh processes, after one warm-up run.
(b) what `import bookmark_enrich.cli` loads: module count and the heavy ones.
(c) a whole-process run over 500 bookmarks that are all in the cache: bookmarks/s,
    start-up included (the cron case). The cache is filled by a real first run
    against a local page server (tiny pages, no latency).

Like an installed package, the processes run from compiled bytecode: it is kept in a
temporary PYTHONPYCACHEPREFIX, so no checkout is written to. ``--as-is`` keeps this
shell's PYTHONDONTWRITEBYTECODE (then every run compiles the package's sources again).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _env import allow_loopback

from tests.servers import latency as latency_server

allow_loopback()  # the re-run's page server is on loopback

HEAVY = ("openai", "boto3", "trafilatura", "numpy", "yake", "sqlite_utils", "httpx",
         "courlan", "lxml")

COMMANDS = (["--version"], ["--help"], ["formats"], ["config", "show"], ["status"],
            ["show", "https://example.com/a"])


def timed(args: list[str], env: dict[str, str], stdin: bytes | None = None) -> tuple[float, float]:
    """Wall and CPU seconds (user + sys) of one fresh ``bookmark-enrich ARGS`` process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "bookmark_enrich", *args], env=env,
                          cwd=env["BENCH_DIR"], input=stdin, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode not in (0, 1):  # 1: a report that lists failures
        raise SystemExit(f"bookmark-enrich {' '.join(args)} exited {proc.returncode}: "
                         f"{proc.stderr.decode()[-500:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def medians(args: list[str], env: dict[str, str], runs: int,
            stdin: bytes | None = None) -> tuple[float, float]:
    timed(args, env, stdin)  # warm-up: the file cache, .pyc files
    results = [timed(args, env, stdin) for _ in range(runs)]
    return (statistics.median(w for w, _ in results),
            statistics.median(c for _, c in results))


def part_a(env: dict[str, str], runs: int) -> None:
    print(f"(a) start-up, median of {runs} (target: --version and --help <= 0.3 s wall)")
    for args in COMMANDS:
        wall, cpu = medians(args, env, runs)
        print(f"    {' '.join(args):<26} wall {wall:.3f} s   cpu {cpu:.3f} s")


def part_b(env: dict[str, str]) -> None:
    code = "import json, sys, bookmark_enrich.cli; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=env["BENCH_DIR"],
                         capture_output=True,
                         text=True, check=True)
    modules = json.loads(out.stdout)
    heavy = [m for m in HEAVY if m in modules]
    print(f"(b) import bookmark_enrich.cli: {len(modules)} modules; heavy ones loaded: "
          f"{', '.join(heavy) or 'none'}")


def part_c(env: dict[str, str], runs: int, n: int = 500) -> None:
    server = latency_server.serve(0.0)
    try:
        urls = "".join(f"{server.base}/raw/tiny?i={i}\n" for i in range(n)).encode()
        args = ["run", "-q", "--no-media"]
        for label, extra in (("fetch+extract", ["--no-summary"]),
                             ("fetch+extract+builtin summary", ["--summarizer", "builtin"])):
            timed([*args, *extra], env, urls)  # the first run fills the cache
            wall, cpu = medians([*args, *extra], env, runs, urls)
            print(f"(c) cached re-run of {n} bookmarks, whole process ({label}): "
                  f"{n / wall:,.0f} bookmarks/s (wall {wall:.3f} s, cpu {cpu:.3f} s; "
                  f"target >= 800/s)")
    finally:
        server.terminate()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--part", default="a,b,c")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--as-is", action="store_true",
                        help="do not cache bytecode (keep PYTHONDONTWRITEBYTECODE)")
    parser.add_argument("--checkout", type=Path,
                        help="measure the package in this checkout (e.g. main, for 'before')")
    args = parser.parse_args()
    parts = set(args.part.split(","))
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        env = {**os.environ, "BOOKMARK_ENRICH_CACHE": str(tmp / "cache.sqlite"),
               "BOOKMARK_ENRICH_MEDIA_DIR": str(tmp / "media"), "COLUMNS": "120",
               "BENCH_DIR": str(tmp)}  # the working directory: `-m` puts it on sys.path
        if not args.as_is:
            env.pop("PYTHONDONTWRITEBYTECODE", None)
            env["PYTHONPYCACHEPREFIX"] = str(tmp / "pycache")
        if args.checkout:
            env["PYTHONPATH"] = os.pathsep.join(
                p for p in (str(args.checkout.resolve()), env.get("PYTHONPATH")) if p)
        subprocess.run([sys.executable, "-m", "bookmark_enrich", "run", "-q", "--no-summary",
                        "--no-media"], env=env, cwd=tmp, input=b"https://127.0.0.1:9/\n",
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        if "a" in parts:
            part_a(env, args.runs)
        if "b" in parts:
            part_b(env)
        if "c" in parts:
            part_c(env, args.runs)


if __name__ == "__main__":
    main()
