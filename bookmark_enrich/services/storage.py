"""Where downloaded media goes: an S3-compatible bucket, or a local directory.

Keys are content-addressed (``media/<sha256[:2]>/<sha256>.<ext>``), so a file is
stored once however many bookmarks point at it; both stores look before they write.
S3 is used when ``S3_ENDPOINT`` is set (or AWS credentials are in the environment);
otherwise media goes to ``--media-dir`` (the embedded default).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import tempfile
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import quote, urlsplit

from ..errors import ServiceUnavailable, StageError
from ..settings import Settings
from .health import Check

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

__all__ = ["LocalStore", "MediaStore", "S3Store", "StorageUnavailable", "media_key",
           "open_store", "s3_configured"]

_MULTIPART_BYTES = 16 * 1024 * 1024


def media_key(sha256: str, ext: str) -> str:
    """``media/ab/abcdef….mp4``."""
    return f"media/{sha256[:2]}/{sha256}.{ext or 'bin'}"


class StorageUnavailable(ServiceUnavailable):
    """The configured storage cannot be used (down, refused, no bucket)."""

    reason = "storage_error"


class MediaStore(Protocol):
    """Somewhere to put a finished download."""

    description: str
    temp_dir: Path | None
    """Where downloads are written first (same filesystem for a cheap rename), or None."""

    async def preflight(self) -> None:
        """Check the store works; raise StorageUnavailable with an actionable line."""

    async def put(self, path: Path, *, sha256: str, ext: str, content_type: str | None,
                  source_url: str) -> tuple[str, bool]:
        """Store the file at ``path`` (consumed); return (uri, already_there)."""

    def close(self) -> None:
        """Release clients."""


class LocalStore:
    """Media under a directory, laid out like the bucket."""

    def __init__(self, root: Path) -> None:
        self.root = root.expanduser()
        self.description = f"local directory {self.root}"
        self.temp_dir: Path | None = self.root / ".partial"

    async def preflight(self) -> None:
        try:
            assert self.temp_dir is not None
            # The user's media: the owner's only (files arrive 0600 from mkstemp).
            self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
            self.temp_dir.mkdir(exist_ok=True, mode=0o700)
            probe = self.temp_dir / f"probe-{uuid.uuid4().hex}"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            raise StorageUnavailable(f"media directory {self.root} is not writable "
                                     f"({exc.strerror or exc}); pass --media-dir") from None

    async def put(self, path: Path, *, sha256: str, ext: str, content_type: str | None,
                  source_url: str) -> tuple[str, bool]:
        target = self.root / media_key(sha256, ext)
        try:
            if target.exists():
                path.unlink(missing_ok=True)  # noqa: ASYNC240 - one unlink
                return str(target), True
            target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            # Same filesystem: an atomic rename; elsewhere a copy into place.
            await asyncio.to_thread(shutil.move, str(path), str(target))
        except OSError as exc:
            raise StageError("storage_error", f"cannot write {target}: "
                             f"{exc.strerror or exc}") from None
        return str(target), False

    def close(self) -> None:
        pass


def s3_configured(settings: Settings) -> bool:
    """S3 when an endpoint is set, or keys are (S3_* or AWS's own variables)."""
    return bool(settings.s3_endpoint or settings.s3_access_key
                or os.environ.get("AWS_ACCESS_KEY_ID") or os.environ.get("AWS_PROFILE"))


def _client_error_code(exc: Exception) -> str:
    response = getattr(exc, "response", None) or {}
    error = response.get("Error") or {}
    return str(error.get("Code") or response.get("ResponseMetadata", {}).get("HTTPStatusCode")
               or "")


class S3Store:
    """A bucket on an S3-compatible server (path-style addressing for MinIO/SeaweedFS)."""

    def __init__(self, settings: Settings, *, connect_timeout: float = 5.0) -> None:
        import boto3
        from botocore.config import Config

        self.settings = settings
        self.bucket = settings.s3_bucket
        where = settings.s3_endpoint or "AWS"
        self.description = f"s3://{self.bucket} at {_safe_endpoint(where)}"
        self.temp_dir: Path | None = None
        session = boto3.session.Session()
        self.client: S3Client = session.client(
            "s3",
            endpoint_url=settings.s3_endpoint,
            aws_access_key_id=(settings.s3_access_key.get_secret_value()
                               if settings.s3_access_key else None),
            aws_secret_access_key=(settings.s3_secret_key.get_secret_value()
                                   if settings.s3_secret_key else None),
            region_name=settings.s3_region or "us-east-1",
            config=Config(s3={"addressing_style": "path"},
                          connect_timeout=connect_timeout, read_timeout=60,
                          retries={"max_attempts": 3, "mode": "standard"},
                          # MinIO-likes reject the newer default checksum trailers.
                          request_checksum_calculation="when_required",
                          response_checksum_validation="when_required"),
        )

    def _problem(self, exc: Exception, doing: str) -> str:
        from botocore.exceptions import (
            ClientError,
            EndpointConnectionError,
            NoCredentialsError,
        )

        where = _safe_endpoint(self.settings.s3_endpoint or "AWS")
        if isinstance(exc, EndpointConnectionError):
            return f"S3 at {where} is unreachable; start it or fix S3_ENDPOINT"
        if isinstance(exc, NoCredentialsError):
            return "no S3 credentials; set S3_ACCESS_KEY and S3_SECRET_KEY"
        if isinstance(exc, ClientError):
            code = _client_error_code(exc)
            if code in ("403", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch"):
                return (f"S3 at {where} refused the credentials ({code}) while {doing}; "
                        "check S3_ACCESS_KEY and S3_SECRET_KEY")
            if code in ("404", "NoSuchBucket"):
                return (f"bucket {self.bucket!r} does not exist at {where}; create it or "
                        "pass --create-bucket")
            return f"S3 at {where}: {code} while {doing}"
        return f"S3 at {where}: {type(exc).__name__} while {doing}"

    def _check_bucket(self) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.head_bucket(Bucket=self.bucket)
            return
        except ClientError as exc:
            if _client_error_code(exc) not in ("404", "NoSuchBucket") or \
                    not self.settings.create_bucket:
                raise StorageUnavailable(self._problem(exc, "checking the bucket")) from None
        except BotoCoreError as exc:
            raise StorageUnavailable(self._problem(exc, "checking the bucket")) from None
        try:
            self.client.create_bucket(Bucket=self.bucket)
        except (ClientError, BotoCoreError) as exc:
            raise StorageUnavailable(self._problem(exc, "creating the bucket")) from None

    async def preflight(self) -> None:
        await asyncio.to_thread(self._check_bucket)

    def _put(self, path: Path, key: str, content_type: str | None,
             source_url: str) -> bool:
        from boto3.s3.transfer import TransferConfig
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            try:
                self.client.head_object(Bucket=self.bucket, Key=key)
                return True
            except ClientError as exc:
                if _client_error_code(exc) not in ("404", "NoSuchKey", "NotFound"):
                    raise
            extra: dict[str, Any] = {
                # Metadata travels in headers: ASCII only, so the URL is percent-encoded.
                "Metadata": {"source-url": quote(source_url, safe=":/?&=%#@+,;~")[:1800]},
                "ContentType": content_type or "application/octet-stream",
            }
            self.client.upload_file(
                str(path), self.bucket, key, ExtraArgs=extra,
                Config=TransferConfig(multipart_threshold=_MULTIPART_BYTES,
                                      multipart_chunksize=_MULTIPART_BYTES,
                                      max_concurrency=4))
            return False
        except (ClientError, BotoCoreError) as exc:
            raise StageError("storage_error", self._problem(exc, "uploading"),
                             retryable=False) from None
        except Exception as exc:  # boto3's transfer wraps failures in its own types
            raise StageError("storage_error", f"S3 upload failed: {type(exc).__name__}: "
                             f"{str(exc)[:200]}") from None

    async def put(self, path: Path, *, sha256: str, ext: str, content_type: str | None,
                  source_url: str) -> tuple[str, bool]:
        key = media_key(sha256, ext)
        try:
            existed = await asyncio.to_thread(self._put, path, key, content_type, source_url)
        finally:
            path.unlink(missing_ok=True)  # noqa: ASYNC240 - one unlink
        return f"s3://{self.bucket}/{key}", existed

    def health(self) -> list[Check]:
        """Endpoint, credentials, bucket, and a probe object written, read and deleted."""
        from botocore.exceptions import BotoCoreError, ClientError

        start = time.perf_counter()
        try:
            self._check_bucket()
        except StorageUnavailable as exc:
            return [Check("s3", "fail", str(exc), (time.perf_counter() - start) * 1000)]
        key = f"bookmark-enrich-probe/{uuid.uuid4().hex}"
        try:
            self.client.put_object(Bucket=self.bucket, Key=key, Body=b"probe")
            body = self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
            self.client.delete_object(Bucket=self.bucket, Key=key)
        except (ClientError, BotoCoreError) as exc:
            return [Check("s3", "fail", self._problem(exc, "writing a probe object"),
                          (time.perf_counter() - start) * 1000)]
        ms = (time.perf_counter() - start) * 1000
        if body != b"probe":
            return [Check("s3", "fail", "probe object read back differently", ms)]
        return [Check("s3", "ok", f"{self.description}: bucket exists, probe object "
                      "written, read and deleted", ms, data={"bucket": self.bucket})]

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.client.close()


def _safe_endpoint(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}:{parts.port}" if parts.port else \
        (f"{parts.scheme}://{parts.hostname}" if parts.hostname else url)


def open_store(settings: Settings) -> MediaStore:
    """S3 when configured, else the local media directory."""
    if s3_configured(settings):
        return S3Store(settings)
    return LocalStore(settings.media_dir)



async def s3_checks(settings: Settings, options: dict[str, Any]) -> list[Check]:
    """For ``doctor``: where media would be stored, and whether that works."""
    if not settings.enable_media_download:
        return [Check("s3", "skip", "media off (ENABLE_MEDIA_DOWNLOAD=false or --no-media)",
                      required=False)]
    if not s3_configured(settings):
        root = settings.media_dir.expanduser()
        # doctor creates nothing: the nearest existing directory must be writable.
        existing = next((p for p in (root, *root.parents) if p.exists()), root)
        data = {"store": "local", "path": str(root)}
        if not os.access(existing, os.W_OK | os.X_OK):
            return [Check("s3", "fail", f"no S3 configured and {existing} is not writable; "
                          "pass --media-dir or set S3_ENDPOINT", data=data)]
        return [Check("s3", "ok", f"no S3 configured: media goes to {root}",
                      required=False, data=data)]
    s3 = S3Store(settings)
    try:
        found = await asyncio.wait_for(asyncio.to_thread(s3.health),
                                       float(options.get("timeout") or 10.0) * 2)
    except TimeoutError:
        found = [Check("s3", "fail", f"{s3.description}: no answer in time")]
    finally:
        s3.close()
    # Default credentials and plain HTTP are flagged by doctor's `settings` check.
    return found


def temp_file(directory: Path | None) -> tuple[int, Path]:
    """A new temporary file for a download (in the store's own directory when it has one)."""
    if directory is not None:
        directory.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix="dl-", suffix=".part",
                                dir=str(directory) if directory else None)
    return fd, Path(name)
