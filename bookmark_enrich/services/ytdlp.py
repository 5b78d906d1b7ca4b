"""Optional yt-dlp back end (``pip install 'bookmark-enrich[ytdlp]'``).

Used with ``--media-backend ytdlp``, or by ``auto`` when Cobalt is not there or
cannot do a link (local processing, unsupported). The size is checked from
``extract_info(download=False)`` before anything is downloaded; playlists are never
expanded; only single-file formats are chosen, so no ffmpeg is needed.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib.util
import mimetypes
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import StageError

__all__ = ["YtDlpFile", "available", "download"]


def available() -> bool:
    """Whether yt-dlp is installed (tests monkeypatch this)."""
    return importlib.util.find_spec("yt_dlp") is not None


@dataclass(slots=True)
class YtDlpFile:
    path: Path
    filename: str
    content_type: str | None
    size: int
    sha256: str


_REASONS = (
    ("private video", "private"),
    ("is private", "private"),
    ("unsupported url", "unsupported"),
    ("not available in your country", "geo_blocked"),
    ("geo restrict", "geo_blocked"),
    ("sign in to confirm your age", "age_restricted"),
    ("http error 429", "rate_limited"),
    ("too many requests", "rate_limited"),
    ("is live", "live"),
    ("unable to download", "download_failed"),
)


def _reason(message: str) -> str:
    low = message.lower()
    return next((code for needle, code in _REASONS if needle in low), "download_failed")


def _size(info: dict[str, Any]) -> int | None:
    for key in ("filesize", "filesize_approx"):
        value = info.get(key)
        if isinstance(value, int | float) and value > 0:
            return int(value)
    return None


def _download(url: str, directory: Path, max_bytes: int, audio_only: bool) -> YtDlpFile:
    import yt_dlp

    fmt = "bestaudio/best" if audio_only else "best[ext=mp4]/best"
    opts: dict[str, Any] = {
        "quiet": True, "no_warnings": True, "noprogress": True, "noplaylist": True,
        "format": fmt, "max_filesize": max_bytes, "outtmpl": str(directory / "%(id)s.%(ext)s"),
        "restrictfilenames": True, "playlist_items": "1", "logger": _Silent(),
    }
    try:
        with yt_dlp.YoutubeDL(opts) as ydl:
            info = ydl.extract_info(url, download=False)
            if not isinstance(info, dict):
                raise StageError("no_media", "yt-dlp found nothing to download")
            if info.get("_type") in ("playlist", "multi_video"):
                raise StageError("unsupported", "a playlist; only single videos are downloaded")
            size = _size(info)
            if size is not None and size > max_bytes:
                raise StageError("too_large", f"media is about {size} bytes, over the "
                                 f"{max_bytes}-byte cap")
            info = ydl.process_ie_result(info, download=True)
            path = Path(ydl.prepare_filename(info))
    except StageError:
        raise
    except Exception as exc:  # yt-dlp raises DownloadError/ExtractorError with messages
        message = str(exc).replace("ERROR: ", "")[:300]
        raise StageError(_reason(message), f"yt-dlp: {message}") from None
    if not path.exists():
        raise StageError("too_large", f"yt-dlp did not keep the file (over the {max_bytes}-byte "
                         "cap?)")
    digest = hashlib.sha256()
    total = 0
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
            total += len(chunk)
    if total > max_bytes:
        path.unlink(missing_ok=True)
        raise StageError("too_large", f"media exceeds the {max_bytes}-byte cap")
    title = str(info.get("title") or info.get("id") or "media")
    ext = path.suffix.lstrip(".")
    return YtDlpFile(path, f"{title}.{ext}" if ext else title,
                     mimetypes.guess_type(path.name)[0], total, digest.hexdigest())


class _Silent:
    """yt-dlp's logger: nothing reaches stderr; errors come back as exceptions."""

    def debug(self, msg: str) -> None:
        pass

    def info(self, msg: str) -> None:
        pass

    def warning(self, msg: str) -> None:
        pass

    def error(self, msg: str) -> None:
        pass


def _new_dir(directory: Path | None) -> Path:
    if directory is not None:
        directory.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix="ytdlp-", dir=str(directory) if directory else None))


async def download(url: str, *, max_bytes: int, audio_only: bool,
                   directory: Path | None = None) -> YtDlpFile:
    """Download ``url`` with yt-dlp in a thread; the file is left for the caller to store.

    It is written in a new directory under ``directory`` (the store's own temp dir, so
    a local store can rename it into place); on failure that directory is removed.
    """
    if not available():
        raise StageError("needs_local_processing", "yt-dlp is not installed "
                         "(pip install 'bookmark-enrich[ytdlp]')")
    target = await asyncio.to_thread(_new_dir, directory)
    try:
        return await asyncio.to_thread(_download, url, target, max_bytes, audio_only)
    except BaseException:
        # Partial files (.part, fragments) go with the directory; nothing is kept.
        await asyncio.to_thread(shutil.rmtree, target, True)
        raise
