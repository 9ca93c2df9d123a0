"""Untrusted markdown to safe HTML for the web oracle's page (pure).

markdown-it-py renders with raw HTML off (any tag in the text stays text) and its own link
validation; nh3 (ammonia) then keeps only a small set of tags, no images, no style, no
event handlers, and links to http/https only (rel="noopener noreferrer nofollow").
"""

from __future__ import annotations

from functools import cache

from aeuf.errors import MissingExtra

TAGS = {"p", "br", "hr", "pre", "code", "blockquote", "em", "strong", "del", "s", "ul", "ol",
        "li", "h1", "h2", "h3", "h4", "h5", "h6", "a", "table", "thead", "tbody", "tr", "th",
        "td", "sup", "sub", "kbd"}
ATTRIBUTES = {"a": {"href"}, "ol": {"start"}, "th": {"align"}, "td": {"align"}}


@cache
def _markdown():
    try:
        import nh3  # noqa: F401
        from markdown_it import MarkdownIt
    except ImportError as err:
        raise MissingExtra("--oracle web needs the web extra: pip install -e \".[web]\"") from err
    return MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("table")


def render(text: str) -> str:
    """Safe HTML for `text` read as markdown (code blocks kept)."""
    html = _markdown().render(text)
    import nh3  # present: _markdown() checked the web extra

    return nh3.clean(html, tags=TAGS, attributes=ATTRIBUTES, url_schemes={"http", "https"},
                     link_rel="noopener noreferrer nofollow", strip_comments=True)
