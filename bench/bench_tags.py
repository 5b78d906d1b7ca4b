"""Tag sprawl with and without neighbour tag suggestions (issue 22). Prints figures.

    python bench/bench_tags.py [--n 300] [--topics 60] [--obey 0.8]

``--n`` synthetic pages on ``--topics`` topics (each page mostly words of its topic)
go through fetch → extract → summarize → embed against the fake LLM and embeddings
servers, into a fresh cache, twice: with ``tag_neighbours=0`` (the prompt offers only
the collection's 30 most used tags, as before) and with the default 5 neighbours.

The fake model stands in for a real one's tag sprawl: each topic has two concepts,
and each concept three spellings a model might coin ("sourdough", "sourdough baking",
"bread fermentation"). For each concept of the page's topic, the model reuses a
spelling it was offered (the system prompt's vocabulary or the suggestions line)
with probability ``--obey``, else coins one at random. So the figure measures how
often the right tags reach the prompt, not how well a given real model follows it.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import io
import json
import random
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _env import allow_loopback

from bookmark_enrich import enrich, load_settings, open_source
from tests.servers.embeddings import EmbeddingServer
from tests.servers.llm import LLMServer
from tests.servers.pages import PageServer

allow_loopback()  # the benchmark's servers are on loopback

_PAGE = "<html><head><title>{}</title></head><body><article><p>{}</p></article></body></html>"
_VOCAB = re.compile(r"Reuse these existing tags where they fit, spelled exactly so: (.*)\.$",
                    re.MULTILINE)
_SUGGESTED = re.compile(r"^Tags of similar bookmarks \(.*?\): (.*)\.$", re.MULTILINE)


def _word(rng: random.Random) -> str:
    return "".join(rng.choice("bcdfghklmnprstvz") + rng.choice("aeiou")
                   for _ in range(rng.randint(2, 4)))


class World:
    """Topics: words that pages use, and two concepts of three spellings each."""

    def __init__(self, topics: int, seed: int = 22) -> None:
        rng = random.Random(seed)
        self.words = [[_word(rng) for _ in range(12)] for _ in range(topics)]
        self.common = [_word(rng) for _ in range(200)]
        self.concepts = [[[w[c], f"{w[c]} {w[c + 2]}", f"{w[c + 4]} studies"] for c in (0, 1)]
                         for w in self.words]
        self._topic_of = {word: t for t, ws in enumerate(self.words) for word in ws}

    def page(self, i: int, rng: random.Random) -> tuple[str, str]:
        topic = i % len(self.words)
        title = " ".join(rng.sample(self.words[topic], 3))
        body = " ".join(rng.choice(self.words[topic]) if rng.random() < 0.6
                        else rng.choice(self.common) for _ in range(300))
        return title, body

    def topic(self, text: str) -> int:
        hits = [self._topic_of[w] for w in re.findall(r"\w+", text) if w in self._topic_of]
        return max(set(hits), key=hits.count) if hits else 0


class SprawlingLLM(LLMServer):
    """The fake LLM server, answering with tags as :class:`World` says a model would."""

    def __init__(self, world: World, obey: float) -> None:
        super().__init__()
        self.world = world
        self.obey = obey

    def _answer(self, messages: list[dict[str, Any]]) -> str:
        system = str(messages[0].get("content") or "")
        user = str(messages[-1].get("content") or "")
        page = re.search(r"<page>\n(.*?)\n</page>", user, re.DOTALL)
        text = page.group(1) if page else user
        offered: list[str] = []
        for pattern, where in ((_SUGGESTED, user), (_VOCAB, system)):
            found = pattern.search(where)
            offered += [t.strip() for t in found.group(1).split(",")] if found else []
        seed = int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")
        rng = random.Random(seed)
        tags = []
        for spellings in self.world.concepts[self.world.topic(text)]:
            known = [t for t in offered if t in spellings]
            tags.append(known[0] if known and rng.random() < self.obey
                        else rng.choice(spellings))
        return json.dumps({"summary": f"A page of {len(text.split())} words.",
                           "keywords": [], "tags": tags, "language": "en"})


def run(urls: list[str], cache: Path, llm: SprawlingLLM, emb: EmbeddingServer,
        neighbours: int) -> tuple[set[str], float, int]:
    settings = load_settings(cache=cache, enable_media_download=False, summarizer="llm",
                             lm_studio_api_url=llm.base_url, embedding_url=emb.base_url,
                             tag_neighbours=neighbours)
    src = open_source("-", stdin=io.BytesIO(("\n".join(urls) + "\n").encode()))
    records: list[dict[str, Any]] = []
    emb.batches.clear()
    start = time.perf_counter()
    asyncio.run(enrich(src, settings, sink=records.append))
    elapsed = time.perf_counter() - start
    bad = [r for r in records if r["status"] != "ok"]
    assert len(records) == len(urls) and not bad, bad[:1]
    tags = {t for r in records for t in r["enrichment"]["tags"]}
    return tags, elapsed, sum(emb.batches[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=300, help="bookmarks")
    parser.add_argument("--topics", type=int, default=60)
    parser.add_argument("--obey", type=float, default=0.8,
                        help="how often the model reuses an offered spelling")
    args = parser.parse_args()
    world = World(args.topics)
    pages = PageServer().start()
    llm = SprawlingLLM(world, args.obey)
    llm.start()
    emb = EmbeddingServer(dimensions=256).start()
    rng = random.Random(7)
    try:
        urls = [pages.add(f"tags-{i}", _PAGE.format(*world.page(i, rng))) for i in range(args.n)]
        best = len(world.concepts) * 2
        print(f"{args.n} bookmarks on {args.topics} topics ({best} concepts, 3 spellings "
              f"each: {best} distinct tags at best, {best * 3} at worst), obey {args.obey}")
        with tempfile.TemporaryDirectory() as tmp:
            for neighbours in (0, 5):
                tags, elapsed, texts = run(urls, Path(tmp) / f"k{neighbours}.sqlite", llm,
                                           emb, neighbours)
                print(f"tag_neighbours={neighbours}: {len(tags)} distinct tags, "
                      f"{len(tags) * 100 / args.n:.1f} per 100 bookmarks; "
                      f"{texts} texts embedded; {elapsed:.1f} s")
    finally:
        llm.stop()
        emb.stop()
        pages.stop()


if __name__ == "__main__":
    main()
