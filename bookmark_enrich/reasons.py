"""The stable reason codes: why a stage failed or was skipped for one bookmark.

Each code is stored in the cache and the output (``errors[].reason``,
``stages.<name>.reason``) and accepted by ``retry --reason``; its wording may be
relied on by scripts, so codes are only ever added. The human message beside a
code may change between versions. This module is the one place they are listed:
the docs' reference page is generated from :data:`REASON_DOCS`.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["DEAD_REASONS", "REASON_DOCS", "RECHECKED_EVERY_RUN", "Reason", "describe", "is_dead"]


class Reason(StrEnum):
    """Every reason code the built-in stages use."""

    # -- any stage
    INTERNAL_ERROR = "internal_error"
    WORKER_ERROR = "worker_error"
    STAGE_UNAVAILABLE = "stage_unavailable"
    UPSTREAM_FAILED = "upstream_failed"
    UPSTREAM_SKIPPED = "upstream_skipped"
    # -- fetch (and every other HTTP download made for a bookmark)
    TIMEOUT = "timeout"
    DEADLINE = "deadline"
    HOST_UNREACHABLE = "host_unreachable"
    CONNECTION_ERROR = "connection_error"
    RATE_LIMITED = "rate_limited"
    SERVER_ERROR = "server_error"
    NOT_FOUND = "not_found"
    GONE = "gone"
    DNS_ERROR = "dns_error"
    CONNECTION_REFUSED = "connection_refused"
    PARKED = "parked"
    HTTP_ERROR = "http_error"
    TOO_LARGE = "too_large"
    TOO_MANY_REDIRECTS = "too_many_redirects"
    INVALID_URL = "invalid_url"
    BLOCKED_ADDRESS = "blocked_address"
    BLOCKED_FILE = "blocked_file"
    DECODING_ERROR = "decoding_error"
    PERMISSION_DENIED = "permission_denied"
    READ_ERROR = "read_error"
    NOT_A_FILE = "not_a_file"
    NO_BODY = "no_body"
    # -- archive (rescuing dead links from a web archive)
    NOT_DEAD = "not_dead"
    NO_SNAPSHOT = "no_snapshot"
    ARCHIVE_UNAVAILABLE = "archive_unavailable"
    ARCHIVE_ERROR = "archive_error"
    # -- extract
    EXTRACT_ERROR = "extract_error"
    NO_CONTENT = "no_content"
    NOT_HTML = "not_html"
    ENCRYPTED = "encrypted"
    DAMAGED_DOCUMENT = "damaged_document"
    NO_TEXT = "no_text"
    # -- summarize
    SUMMARIZE_ERROR = "summarize_error"
    CONTEXT_OVERFLOW = "context_overflow"
    BAD_JSON = "bad_json"
    MODEL_NOT_LOADED = "model_not_loaded"
    LLM_UNREACHABLE = "llm_unreachable"
    # -- media
    NOT_MEDIA = "not_media"
    NO_MEDIA = "no_media"
    NO_MEDIA_BACKEND = "no_media_backend"
    UNSUPPORTED = "unsupported"
    PRIVATE = "private"
    AGE_RESTRICTED = "age_restricted"
    GEO_BLOCKED = "geo_blocked"
    LIVE = "live"
    UNAVAILABLE = "unavailable"
    LOGIN_REQUIRED = "login_required"
    YOUTUBE_ERROR = "youtube_error"
    FETCH_FAILED = "fetch_failed"
    NEEDS_LOCAL_PROCESSING = "needs_local_processing"
    TRUNCATED = "truncated"
    DOWNLOAD_FAILED = "download_failed"
    STORAGE_ERROR = "storage_error"
    COBALT_UNREACHABLE = "cobalt_unreachable"
    COBALT_AUTH = "cobalt_auth"
    COBALT_PROTOCOL = "cobalt_protocol"
    COBALT_ERROR = "cobalt_error"


REASON_DOCS: dict[Reason, tuple[str, str]] = {
    # reason: (stages, meaning)
    Reason.INTERNAL_ERROR: ("any", "A bug in a stage; the message has the exception. "
                            "Costs one bookmark, never the run."),
    Reason.WORKER_ERROR: ("any", "A queue worker could not run the bookmark (it crashed or "
                          "returned nothing usable)."),
    Reason.STAGE_UNAVAILABLE: ("any", "A queue worker has this stage switched off (its own "
                               "settings), so it could not run it."),
    Reason.UPSTREAM_FAILED: ("any", "Skipped: a stage this one needs failed."),
    Reason.UPSTREAM_SKIPPED: ("any", "Skipped: a stage this one needs was skipped."),
    Reason.TIMEOUT: ("fetch, extract, media, summarize", "The server did not answer in "
                     "time, or a document's extraction took longer than "
                     "`document_timeout`; for summarize, the model produced no new token "
                     "for `llm_timeout` seconds (a model still writing is never cut off)."),
    Reason.CONNECTION_ERROR: ("fetch, media", "The connection failed (reset, cut, "
                              "unreachable network); refusals and unknown names have their "
                              "own codes."),
    Reason.RATE_LIMITED: ("fetch, media, summarize", "HTTP 429 or the service's rate limit "
                          "(for the LLM also 503 or a \"busy\" answer, which lowers its "
                          "concurrency); retried, honouring Retry-After."),
    Reason.DEADLINE: ("fetch, media, summarize", "No complete answer within the stage's "
                      "total deadline (`fetch_deadline`, `media_deadline`, `llm_deadline`; "
                      "all attempts together): a server that never answers, trickles bytes "
                      "or keeps the model writing."),
    Reason.HOST_UNREACHABLE: ("fetch", "Not tried: earlier bookmarks of the same host "
                              "(scheme, name, port) failed to connect, timed out or hit the "
                              "deadline `host_failures` times in a row in this run. "
                              "`retry --reason host_unreachable` tries them again."),
    Reason.SERVER_ERROR: ("fetch, media, summarize", "HTTP 5xx; retried with backoff."),
    Reason.NOT_FOUND: ("fetch, media", "HTTP 404, or a missing file: the link is dead."),
    Reason.GONE: ("fetch, media", "HTTP 410 Gone: the link is dead, on purpose."),
    Reason.DNS_ERROR: ("fetch, media", "The host name does not resolve (the domain is gone "
                       "or mistyped): the link is dead."),
    Reason.CONNECTION_REFUSED: ("fetch, media", "The server refused the connection on "
                                "every attempt: the link is dead."),
    Reason.PARKED: ("fetch", "The domain shows a parking or for-sale placeholder page (known "
                    "parking services' markers): the link is dead."),
    Reason.HTTP_ERROR: ("fetch, media", "Another HTTP 4xx answer."),
    Reason.TOO_LARGE: ("fetch, media", "Larger than the size cap (`--max-page-mb`, "
                       "`--max-document-mb`, `MAX_MEDIA_SIZE_MB`); nothing is kept."),
    Reason.TOO_MANY_REDIRECTS: ("fetch", "More redirects than `--max-redirects`."),
    Reason.INVALID_URL: ("fetch, media", "The URL cannot be requested."),
    Reason.BLOCKED_ADDRESS: ("fetch, media", "The URL leads to a loopback, private, "
                             "link-local or reserved address, which the network policy refuses "
                             "(`--allow-private-network`, `--allow-host`)."),
    Reason.BLOCKED_FILE: ("fetch", "A `file:` bookmark outside the bookmarks file's folder, "
                          "or from stdin or a database (`--allow-file-root`)."),
    Reason.DECODING_ERROR: ("fetch", "The body could not be decoded (bad compression)."),
    Reason.PERMISSION_DENIED: ("fetch", "A `file:` bookmark the process may not read."),
    Reason.READ_ERROR: ("fetch", "A `file:` bookmark that could not be read."),
    Reason.NOT_A_FILE: ("fetch", "A `file:` bookmark naming a device, FIFO, socket or "
                        "folder: only regular files are read."),
    Reason.NO_BODY: ("extract", "The page body is not available (the fetch was cached "
                     "without it and could not be repeated)."),
    Reason.NOT_DEAD: ("archive", "Skipped: the page was fetched, so no archive is asked."),
    Reason.NO_SNAPSHOT: ("archive", "Skipped: the web archive has no snapshot of the dead "
                         "link (asked again after `archive_miss_ttl` days)."),
    Reason.ARCHIVE_UNAVAILABLE: ("archive", "The web archive could not be reached, timed "
                                 "out (`archive_timeout`) or kept answering 429; the run "
                                 "goes on (`retry --reason archive_unavailable` asks again)."),
    Reason.ARCHIVE_ERROR: ("archive", "The web archive's answer could not be read (not the "
                           "availability API's JSON), or its snapshot could not be fetched."),
    Reason.EXTRACT_ERROR: ("extract", "The extractor failed on this page."),
    Reason.NO_CONTENT: ("extract, summarize", "Skipped: the page has no main text."),
    Reason.NOT_HTML: ("extract", "Skipped: the content type is not one the extractor reads "
                      "(HTML pages, PDF, plain text, Markdown, reST)."),
    Reason.ENCRYPTED: ("extract", "The PDF is encrypted and needs a password; nothing is "
                       "read."),
    Reason.DAMAGED_DOCUMENT: ("extract", "The document is broken (cut short, not a PDF "
                              "inside, binary data served as text)."),
    Reason.NO_TEXT: ("extract, summarize", "Skipped: the PDF has no text layer (a scan); "
                     "its metadata is kept. OCR is out of scope."),
    Reason.SUMMARIZE_ERROR: ("summarize", "The summarizer failed for another reason."),
    Reason.CONTEXT_OVERFLOW: ("summarize", "The prompt does not fit the model's context, "
                              "even after two retries with half the text and fewer "
                              "requests in flight."),
    Reason.BAD_JSON: ("summarize", "The model's answer is not valid JSON for the schema, "
                      "after closing a cut-off answer and one repair request."),
    Reason.MODEL_NOT_LOADED: ("summarize", "The server has no such model loaded."),
    Reason.LLM_UNREACHABLE: ("summarize", "The LLM server cannot be reached."),
    Reason.NOT_MEDIA: ("media", "Skipped: the bookmark is not a media link."),
    Reason.NO_MEDIA: ("media", "The link has no downloadable media."),
    Reason.NO_MEDIA_BACKEND: ("media", "Skipped: neither Cobalt nor yt-dlp is available."),
    Reason.UNSUPPORTED: ("media", "The back end does not support this link."),
    Reason.PRIVATE: ("media", "The post or video is private."),
    Reason.AGE_RESTRICTED: ("media", "The video needs an age-verified login."),
    Reason.GEO_BLOCKED: ("media", "Not available in the back end's region."),
    Reason.LIVE: ("media", "A live stream; it cannot be downloaded."),
    Reason.UNAVAILABLE: ("media", "The content is gone or cannot be read."),
    Reason.LOGIN_REQUIRED: ("media", "The service wants a login."),
    Reason.YOUTUBE_ERROR: ("media", "YouTube refused for another reason."),
    Reason.FETCH_FAILED: ("media", "Cobalt could not fetch the post; retried."),
    Reason.NEEDS_LOCAL_PROCESSING: ("media", "Cobalt needs local processing (ffmpeg) and "
                                    "yt-dlp is not there to take over."),
    Reason.TRUNCATED: ("media", "The connection ended before the whole file arrived; "
                       "nothing stored."),
    Reason.DOWNLOAD_FAILED: ("media", "The download failed for another reason."),
    Reason.STORAGE_ERROR: ("media", "The file could not be stored (S3 or the media folder)."),
    Reason.COBALT_UNREACHABLE: ("media", "The Cobalt instance cannot be reached."),
    Reason.COBALT_AUTH: ("media", "Cobalt refused the API key."),
    Reason.COBALT_PROTOCOL: ("media", "Cobalt did not understand the request (version "
                             "mismatch)."),
    Reason.COBALT_ERROR: ("media", "Cobalt answered with an error this version does not know."),
}


def describe(reason: str) -> str:
    """The one-line meaning of a reason code ('' for codes this version does not know)."""
    try:
        return REASON_DOCS[Reason(reason)][1]
    except ValueError:
        return ""


DEAD_REASONS = frozenset({Reason.NOT_FOUND, Reason.GONE, Reason.DNS_ERROR,
                          Reason.CONNECTION_REFUSED, Reason.PARKED})
"""Fetch failures that mean the page is gone: the archive stage looks for a snapshot."""

_UNREACHABLE = "host_unreachable"
"""The unattended runs' fast-fail code: dead only when its cause was refusals or DNS."""


def is_dead(reason: str | None, message: str | None = None) -> bool:
    """Whether a fetch failure with this reason (and message) means the page is dead."""
    if reason in DEAD_REASONS:
        return True
    if reason == _UNREACHABLE:
        text = (message or "").lower()
        return any(word in text for word in ("refused", "resolve", "dns_error", "dns"))
    return False


RECHECKED_EVERY_RUN = frozenset({Reason.BLOCKED_ADDRESS, Reason.BLOCKED_FILE})
"""Failures that say more about this run's settings than about the bookmark: a cached
one is tried again by the next run (refusing again costs no request)."""
