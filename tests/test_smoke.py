"""The package installs, imports and answers --version."""

from __future__ import annotations

import subprocess
import sys

import bookmark_enrich


def test_version_flag() -> None:
    out = subprocess.run([sys.executable, "-m", "bookmark_enrich", "--version"],
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip() == f"bookmark-enrich {bookmark_enrich.__version__}"
