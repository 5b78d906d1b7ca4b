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
_SERVICE_BY_ANCHOR = {a: tuple(m for m in _SERVICE_MARKERS if a.decode() in m) for a in _ANCHORS}
"""The service markers by a word each holds: most pages hold none, and skip the markers."""
assert {m for ms in _SERVICE_BY_ANCHOR.values() for m in ms} == set(_SERVICE_MARKERS)
_PHRASE_KEYS = ((b"parked",), (b"domain", b"sale"), (b"domain", b"buy"),
                (b"domain", b"inquire"), (b"domain", b"offer"))
"""Every stock sentence holds all the words of one key. Stripping tags cannot make a word
appear (a tag becomes a space), so a page without them needs no text worked out."""
assert all(any(all(k.decode() in p for k in key) for key in _PHRASE_KEYS)
           for p in _PHRASE_MARKERS)

_TAGS = re.compile(rb"<script\b.*?</script>|<style\b.*?</style>|<[^>]+>", re.S | re.I)


def parking_marker(body: bytes) -> str | None:
    """The parking marker found in an HTML ``body``, or None for an ordinary page."""
    # This runs for every page in the main process, so the common case is kept cheap.
    lowered = body[:_HEAD].lower()
    for anchor, markers in _SERVICE_BY_ANCHOR.items():
        if anchor in lowered:
            for marker in markers:
                if marker.encode() in lowered:
                    return marker
    if not any(all(word in lowered for word in key) for key in _PHRASE_KEYS):
        return None
    text = b" ".join(_TAGS.sub(b" ", lowered).split())
    if len(text) > _SHORT_TEXT:
        return None
    for marker in _PHRASE_MARKERS:
        if marker.encode() in text:
            return marker
    return None
