"""Media stage benchmark (issue 5). Prints figures; asserts nothing.

    python bench/bench_media.py [--files 8] [--mb 25] [--big-mb 400] [--rounds 3]

Part a: the same local files (a) uploaded straight to SeaweedFS with boto3's
``upload_file`` and (b) fetched by the media stage through the Cobalt-protocol server
(tests/servers/cobalt.py: tunnel, chunked, no Content-Length) into the same S3
server, in the same run. Reports MB/s of each and the ratio (target >= 0.8).

Part b: one file of ``--big-mb`` streams through the stage while a thread samples
the process's RSS every 20 ms; the peak over the baseline must stay flat (no
whole-file buffering).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _env import allow_loopback
from boto3.s3.transfer import TransferConfig

from bookmark_enrich import enrich, load_settings, open_source
from bookmark_enrich.stages import build_stages
from tests.servers.cobalt import CobaltServer
from tests.servers.s3 import SeaweedS3

allow_loopback()  # the benchmark's servers are on loopback

YT = "https://www.youtube.com/watch?v="


def run_stage(urls: list[str], cobalt: CobaltServer, s3: SeaweedS3, bucket: str,
              work: Path) -> list[dict[str, Any]]:
    settings = load_settings(cache=work / f"cache-{uuid.uuid4().hex}.sqlite",
                             enable_ai_summarization=False, cobalt_api_url=cobalt.url,
                             s3_endpoint=s3.endpoint, s3_access_key=s3.access_key,
                             s3_secret_key=s3.secret_key, s3_bucket=bucket,
                             max_media_size_mb=2000)
    src = open_source("-", stdin=io.BytesIO(("\n".join(urls) + "\n").encode()))
    records: list[dict[str, Any]] = []
    asyncio.run(enrich(src, settings, sink=records.append,
                       stages=build_stages(settings, only={"media"})))
    bad = [r for r in records if r["status"] != "ok"]
    assert len(records) == len(urls) and not bad, bad[:1]
    return records


def part_a(cobalt: CobaltServer, s3: SeaweedS3, work: Path, files: int, mb: int,
           rounds: int) -> None:
    names = [f"bench-{i}" for i in range(files)]
    paths = [cobalt.add_file(n, mb * 1024 * 1024) for n in names]
    total_mb = files * mb
    client = s3.client()
    config = TransferConfig(multipart_threshold=16 * 1024 * 1024,
                            multipart_chunksize=16 * 1024 * 1024, max_concurrency=4)
    print(f"part a: {files} files x {mb} MB = {total_mb} MB per pass, media_concurrency=2")
    # Warm up both paths (SeaweedFS grows its volumes on the first writes).
    warm = f"bench-warm-{uuid.uuid4().hex[:8]}"
    client.create_bucket(Bucket=warm)
    client.upload_file(str(paths[0]), warm, "warm", Config=config)
    run_stage([YT + names[0]], cobalt, s3, warm, work)
    s3.empty_bucket(warm, delete=True)
    ratios: list[float] = []
    for r in range(rounds):
        direct_bucket = f"bench-direct-{uuid.uuid4().hex[:8]}"
        client.create_bucket(Bucket=direct_bucket)
        start = time.perf_counter()
        for name, path in zip(names, paths, strict=True):
            client.upload_file(str(path), direct_bucket, f"media/{name}.mp4", Config=config)
        direct = total_mb / (time.perf_counter() - start)

        stage_bucket = f"bench-stage-{uuid.uuid4().hex[:8]}"
        client.create_bucket(Bucket=stage_bucket)
        start = time.perf_counter()
        run_stage([YT + n for n in names], cobalt, s3, stage_bucket, work)
        stage = total_mb / (time.perf_counter() - start)
        ratios.append(stage / direct)
        print(f"  round {r + 1}: direct boto3 upload {direct:7.1f} MB/s | media stage "
              f"(Cobalt tunnel -> SHA-256 -> S3) {stage:7.1f} MB/s | ratio {stage / direct:.2f}")
        s3.empty_bucket(direct_bucket, delete=True)
        s3.empty_bucket(stage_bucket, delete=True)
    print(f"  median ratio {statistics.median(ratios):.2f} (target >= 0.8)")


def part_b(cobalt: CobaltServer, s3: SeaweedS3, work: Path, big_mb: int) -> None:
    cobalt.add_file("big", big_mb * 1024 * 1024)
    proc = psutil.Process()
    baseline = proc.memory_info().rss
    peak = baseline
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, proc.memory_info().rss)
            time.sleep(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    bucket = f"bench-big-{uuid.uuid4().hex[:8]}"
    s3.client().create_bucket(Bucket=bucket)
    sampler.start()
    start = time.perf_counter()
    try:
        run_stage([YT + "big"], cobalt, s3, bucket, work)
    finally:
        done.set()
        sampler.join()
    elapsed = time.perf_counter() - start
    print(f"part b: {big_mb} MB file through the stage in {elapsed:.1f} s "
          f"({big_mb / elapsed:.1f} MB/s); RSS baseline {baseline / 2**20:.0f} MB, "
          f"peak {peak / 2**20:.0f} MB (+{(peak - baseline) / 2**20:.0f} MB)")
    s3.empty_bucket(bucket, delete=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--files", type=int, default=8)
    parser.add_argument("--mb", type=int, default=25)
    parser.add_argument("--big-mb", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-media-") as tmp:
        work = Path(tmp)
        (work / "weed").mkdir()
        s3 = SeaweedS3(work / "weed").start()
        cobalt = CobaltServer().start()
        try:
            # Part b first, so the RSS baseline is not inflated by part a's buffers.
            part_b(cobalt, s3, work, args.big_mb)
            part_a(cobalt, s3, work, args.files, args.mb, args.rounds)
        finally:
            cobalt.stop()
            s3.stop()


if __name__ == "__main__":
    main()
