"""Parked domains: a 200 page that is only a parking or for-sale placeholder.

A domain that lapsed is often bought by a parking service, which answers every
path with ads or an offer to sell the name. The fetch succeeds, but the page the
user bookmarked is gone. The markers below are the parking services' own
scripts, hosts and stock sentences, matched in the start of the body (parking
pages are small; an article quoting one of these phrases is long, so only a
short page or a service's script counts).
"""

from __future__ import annotations

import re

__all__ = ["parking_marker"]

_HEAD = 64 * 1024
"""Bytes looked at: parking pages put their markers early."""

_SHORT_TEXT = 2000
"""A page with more visible text than this is not a placeholder, whatever it quotes."""

_SERVICE_MARKERS = (
    # Scripts, hosts and variables only a parking service's page carries.
    "sedoparking.com", "sedoparkingurl", "footer_domain_parking",
    "parkingcrew.net", "bodis.com/", "window.park", "img1.wsimg.com/parking-lander",
    "parklogic.com", "above.com/marketplace", "dsparking.com", "dan.com/buy-domain",
    "hugedomains.com/domain_profile", "afternic.com/forsale", "domainmarket.com/buynow",
    "adsense/domains/caf.js", "parking-lander",
)
_PHRASE_MARKERS = (
    # Stock sentences of placeholder pages; they count only on a short page.
    "this domain may be for sale", "this domain is for sale", "the domain name is for sale",
    "buy this domain", "this domain name is parked", "domain is parked free",
    "because this domain has been parked", "parked free, courtesy of",
    "this web page is parked", "domain names for sale", "inquire about this domain",
    "make an offer on this domain",
)

_ANCHORS = (b"park", b"domain", b"bodis.com/", b"above.com/", b"afternic.com/")
_SERVICE_BY_ANCHOR = {
    a: tuple((m.encode(), m.find(a.decode())) for m in _SERVICE_MARKERS if a.decode() in m)
    for a in _ANCHORS}
"""The service markers by a word each holds, with where it holds it: a marker can only
start where that word occurs, so each occurrence is checked in place instead of scanning
the page once per marker (this runs in the main process for every page, issue 23)."""
assert {m for ms in _SERVICE_BY_ANCHOR.values() for m, _ in ms} == \
    {m.encode() for m in _SERVICE_MARKERS}
_PHRASE_KEYS = ((b"parked",), (b"domain", b"sale"), (b"domain", b"buy"),
                (b"domain", b"inquire"), (b"domain", b"offer"))
"""Every stock sentence holds all the words of one key. Stripping tags cannot make a word
appear (a tag becomes a space), so a page without them needs no text worked out."""
assert all(any(all(k.decode() in p for k in key) for key in _PHRASE_KEYS)
           for p in _PHRASE_MARKERS)
assert all(key[0] in _ANCHORS or key[0].startswith(b"park") for key in _PHRASE_KEYS)
_NEAR = 256
"""Bytes around a key's first word where its other word must be: a stock sentence's words
are a few characters apart in the text, so only markup parts them, and by more than
this only in contrived pages."""

_TAGS = re.compile(rb"<script\b.*?</script>|<style\b.*?</style>|<[^>]+>", re.S)


def _positions(lowered: bytes, word: bytes) -> list[int]:
    found: list[int] = []
    at = lowered.find(word)
    while at != -1:
        found.append(at)
        at = lowered.find(word, at + 1)
    return found


def _service_marker(lowered: bytes, where: dict[bytes, list[int]]) -> str | None:
    for anchor, markers in _SERVICE_BY_ANCHOR.items():
        for at in where[anchor]:
            for marker, offset in markers:
                if at >= offset and lowered.startswith(marker, at - offset):
                    return marker.decode()
    return None


def _may_hold_phrase(lowered: bytes, where: dict[bytes, list[int]]) -> bool:
    """Whether some key's words all occur, the others within :data:`_NEAR` of the first."""
    for first, *others in _PHRASE_KEYS:
        # "parked" starts where "park" does: no need to look for it again.
        found = where[first] if first in where else \
            [at for at in where[b"park"] if lowered.startswith(first, at)]
        for at in found:
            near = lowered[max(0, at - _NEAR):at + len(first) + _NEAR]
            if all(word in near for word in others):
                return True
    return False


def parking_marker(body: bytes) -> str | None:
    """The parking marker found in an HTML ``body``, or None for an ordinary page."""
    # This runs for every page in the main process, so each word is looked for once.
    lowered = body[:_HEAD].lower()
    where = {anchor: _positions(lowered, anchor) for anchor in _ANCHORS}
    marker = _service_marker(lowered, where)
    if marker is not None or not _may_hold_phrase(lowered, where):
        return marker
    text = b" ".join(_TAGS.sub(b" ", lowered).split())
    if len(text) > _SHORT_TEXT:
        return None
    for phrase in _PHRASE_MARKERS:
        if phrase.encode() in text:
            return phrase
    return None
