"""URLs as browsers read them, and the de-duplication rules, on real-world pairs."""

from __future__ import annotations

import pytest

from bookmark_enrich.urls import InvalidURL, bookmark_key, normalize_url, resolve_url


def _key(url: str) -> str:
    return normalize_url(resolve_url(url))


# (a, b): the same resource, one cache entry.
SAME = [
    # scheme and host case
    ("HTTPS://Example.COM/page", "https://example.com/page"),
    ("https://WWW.Wikipedia.ORG/wiki/URL", "https://www.wikipedia.org/wiki/URL"),
    ("HTTP://news.ycombinator.com/item?id=1", "http://news.ycombinator.com/item?id=1"),
    # default ports
    ("https://github.com:443/ada-url/ada", "https://github.com/ada-url/ada"),
    ("http://example.org:80/a", "http://example.org/a"),
    # an empty path is "/"
    ("https://example.com", "https://example.com/"),
    # the fragment
    ("https://docs.python.org/3/library/re.html#re.sub",
     "https://docs.python.org/3/library/re.html"),
    ("https://en.wikipedia.org/wiki/Sourdough#History", "https://en.wikipedia.org/wiki/Sourdough"),
    ("https://example.com/spa#/route/1", "https://example.com/spa"),
    ("https://example.com/page#", "https://example.com/page"),
    # tracking parameters
    ("https://www.nytimes.com/2024/01/01/a.html?utm_source=twitter&utm_medium=social",
     "https://www.nytimes.com/2024/01/01/a.html"),
    ("https://blog.example.com/post?id=7&utm_campaign=spring", "https://blog.example.com/post?id=7"),
    ("https://example.com/a?fbclid=IwAR0abc", "https://example.com/a"),
    ("https://shop.example.com/p/42?gclid=Cj0KCQ&color=red", "https://shop.example.com/p/42?color=red"),
    ("https://example.com/n?mc_eid=123&mc_cid=456", "https://example.com/n"),
    ("https://example.com/a?UTM_Source=x", "https://example.com/a"),
    ("https://example.com/a?msclkid=1&q=x", "https://example.com/a?q=x"),
    ("https://www.instagram.com/p/Cx/?igshid=abc", "https://www.instagram.com/p/Cx/"),
    ("https://example.com/a?q=x&_hsenc=p2&_hsmi=9", "https://example.com/a?q=x"),
    ("https://example.com/a?utm_content=b#top", "https://example.com/a"),
    # what browsers strip: surrounding whitespace, tabs and line breaks inside
    ("  https://example.com/x  ", "https://example.com/x"),
    ("https://example.com/long/\npath", "https://example.com/long/path"),
    ("https://exam\tple.com/", "https://example.com/"),
    ("https://example.com/a?b=\r\n1", "https://example.com/a?b=1"),
    # dot segments, as the URL Standard resolves them
    ("https://example.com/a/./b/../c", "https://example.com/a/c"),
    # IPv4 forms a browser reads as the same address
    ("http://0177.0.0.1/", "http://127.0.0.1/"),
    ("http://2130706433/", "http://127.0.0.1/"),
    ("http://0x7f.1/", "http://127.0.0.1/"),
    # international domain names, in Unicode or punycode
    ("https://müller.de/", "https://xn--mller-kva.de/"),
    ("https://BÜCHER.example/", "https://xn--bcher-kva.example/"),
    # the fragment goes, an empty query stays
    ("https://example.com/?", "https://example.com/?#frag"),
]

# (a, b): possibly different resources, never merged.
DIFFERENT = [
    # parameters without a value
    ("https://example.com/page?kr1", "https://example.com/page"),
    ("https://example.com/page?pg0", "https://example.com/page?pg1"),
    ("https://example.com/page?pg1", "https://example.com/page?pg2"),
    ("https://example.com/search?q", "https://example.com/search?q="),
    # parameter order is the site's business
    ("https://example.com/a?x=1&y=2", "https://example.com/a?y=2&x=1"),
    # parameter values and names keep their case
    ("https://example.com/a?id=ABC", "https://example.com/a?id=abc"),
    ("https://example.com/a?ID=1", "https://example.com/a?id=1"),
    # paths keep their case and trailing slash
    ("https://github.com/Ada-URL/Ada", "https://github.com/ada-url/ada"),
    ("https://example.com/dir/", "https://example.com/dir"),
    # scheme, port, www and subdomains
    ("http://example.com/", "https://example.com/"),
    ("https://example.com:8443/", "https://example.com/"),
    ("https://www.example.com/", "https://example.com/"),
    ("https://m.youtube.com/watch?v=a", "https://www.youtube.com/watch?v=a"),
    # near-tracking names that are real parameters
    ("https://example.com/a?ref=home", "https://example.com/a"),
    ("https://example.com/a?source=rss", "https://example.com/a"),
    ("https://example.com/a?utm=1", "https://example.com/a"),
    ("https://www.youtube.com/watch?v=dQw4w9WgXcQ", "https://www.youtube.com/watch?v=xvFZjo5PgG0"),
    ("https://news.ycombinator.com/item?id=1", "https://news.ycombinator.com/item?id=2"),
    # percent-encoding is not undone
    ("https://example.com/a%2Fb", "https://example.com/a/b"),
    ("https://example.com/?q=a%26b", "https://example.com/?q=a&b"),
    # user info
    ("https://user@example.com/", "https://example.com/"),
]


def test_the_table_is_large_enough() -> None:
    assert len(SAME) + len(DIFFERENT) >= 40


@pytest.mark.parametrize(("a", "b"), SAME)
def test_same_resource_same_key(a: str, b: str) -> None:
    assert _key(a) == _key(b)
    assert bookmark_key(_key(a)) == bookmark_key(_key(b))


@pytest.mark.parametrize(("a", "b"), DIFFERENT)
def test_different_resources_stay_apart(a: str, b: str) -> None:
    assert _key(a) != _key(b)


def test_issue_examples() -> None:
    assert _key("https://example.com/page?kr1") == "https://example.com/page?kr1"
    assert _key("https://example.com/p?pg0&utm_source=x#top") == "https://example.com/p?pg0"
    assert _key("https://e.com/?a=1&utm_source=x&b=2") == "https://e.com/?a=1&b=2"


@pytest.mark.parametrize("url", [
    "http://ex ample.com/",  # a space in the host
    "http://exa<mple.com/",
    "https://[::1/",
    "http://",
    "https://:443/",
])
def test_what_the_standard_rejects_is_reported_whole(url: str) -> None:
    with pytest.raises(InvalidURL) as info:
        resolve_url(url)
    assert url.strip() in str(info.value)


@pytest.mark.parametrize("url", ["javascript:alert(1)", "ftp://example.com/", "mailto:a@b.c",
                                 "example.com/page", "data:text/html,hi"])
def test_only_http_and_file(url: str) -> None:
    with pytest.raises(InvalidURL, match="not an http"):
        resolve_url(url)


def test_other_control_characters_are_refused() -> None:
    with pytest.raises(InvalidURL, match="control characters"):
        resolve_url("https://example.com/a\x00b")


def test_the_url_is_what_a_browser_would_request() -> None:
    assert resolve_url("http://0177.0.0.1:8080/x") == "http://127.0.0.1:8080/x"
    assert resolve_url("https://Example.com") == "https://example.com/"
