"""Listing formats of tender portals -> :class:`Listing` entries (one per notice link).

- ``rss``/``atom``: feedparser (handles both, broken encodings and dates included);
- ``json``: a list API; dotted paths name the list and each entry's fields;
- ``html``: a list page; CSS selectors (selectolax, the lexbor engine) pick rows, the link
  and date cells. Listings rarely state budgets or winners, so ``detail_selector`` makes the
  connector fetch each new notice's page and read the text under that selector.
"""

from __future__ import annotations

import calendar
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import urljoin

import feedparser  # type: ignore[import-untyped]
from pydantic import BaseModel, ConfigDict
from selectolax.lexbor import LexborHTMLParser

from dealstream.connectors.sdk.errors import RecordError
from dealstream.connectors.tenders.extract import parse_datetime


class TenderSource(BaseModel):
    """One portal listing to poll (a stream with its own cursor)."""

    model_config = ConfigDict(extra="forbid")

    name: str
    kind: Literal["rss", "atom", "json", "html"]
    urls: list[str]
    """Listing pages polled in order (page 1, 2, ...): a notice on several is emitted once."""
    region: str = ""
    """Region code for every notice of this portal (a provincial portal); else from the text."""
    items_path: str = "data"
    fields: dict[str, str] = {}
    """JSON: our field (id, title, url, published, content, buyer, region) -> dotted path."""
    row_selector: str = "ul.notice-list li"
    link_selector: str = "a"
    date_selector: str = ".date"
    detail_selector: str | None = None
    """CSS selector of the notice body on its own page; set to fetch pages of new notices."""


@dataclass(frozen=True)
class Listing:
    key: str
    """What the portal identifies the entry by (guid, id or URL): the cursor remembers it."""
    title: str
    url: str
    published_at: datetime | None
    text: str
    buyer: str = ""
    region: str = ""


_JSON_DEFAULTS = {"id": "id", "title": "title", "url": "url", "published": "publish_time",
                  "content": "content", "buyer": "buyer", "region": "region"}  # fmt: skip


def html_text(html: str, selector: str | None = None) -> str:
    """Visible text of ``html`` (under ``selector``), one line per block element."""
    tree = LexborHTMLParser(html)
    node = tree.css_first(selector) if selector else (tree.body or tree.root)
    if node is None:
        return ""
    for tag in ("p", "br", "li", "tr", "div", "h1", "h2", "h3", "td"):
        for element in node.css(tag):
            element.insert_after("\n")
    lines = (line.strip() for line in node.text(separator="").splitlines())
    return "\n".join(line for line in lines if line)


def _dig(data: Any, path: str) -> Any:
    for part in path.split(".") if path else ():
        data = data.get(part) if isinstance(data, Mapping) else None
    return data


def _when(value: Any) -> datetime | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value / 1000 if value > 10**11 else value, UTC)
    return parse_datetime(value) if isinstance(value, str) else None


def parse_feed(body: bytes, base_url: str) -> Iterator[Listing]:
    feed = feedparser.parse(body)
    for entry in feed.entries:
        stamp = entry.get("published_parsed") or entry.get("updated_parsed")
        published = datetime.fromtimestamp(calendar.timegm(stamp), UTC) if stamp else None
        url = urljoin(base_url, entry.get("link", ""))
        content = entry.get("content", [{}])[0].get("value") or entry.get("summary", "")
        yield Listing(
            key=entry.get("id") or url,
            title=str(entry.get("title", "")).strip(),
            url=url,
            published_at=published or _when(entry.get("published")),
            text=html_text(content) if "<" in content else content,
            buyer=str(entry.get("author", "")),
        )


def parse_json(body: bytes, source: TenderSource, base_url: str) -> Iterator[Listing]:
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise RecordError("bad_json", f"{source.name}: listing is not JSON: {error}") from None
    items = data if isinstance(data, list) else _dig(data, source.items_path)
    if not isinstance(items, list):
        raise RecordError("bad_json", f"{source.name}: no list at {source.items_path!r}")
    paths = {**_JSON_DEFAULTS, **source.fields}
    for item in items:

        def get(name: str, item: Any = item) -> Any:
            return _dig(item, paths[name])

        url = urljoin(base_url, str(get("url") or ""))
        content = str(get("content") or "")
        yield Listing(
            key=str(get("id") or url),
            title=str(get("title") or "").strip(),
            url=url,
            published_at=_when(get("published")),
            text=html_text(content) if "<" in content else content,
            buyer=str(get("buyer") or ""),
            region=str(get("region") or ""),
        )


def parse_html(body: bytes, source: TenderSource, base_url: str) -> Iterator[Listing]:
    tree = LexborHTMLParser(body.decode("utf-8", errors="replace"))
    for row in tree.css(source.row_selector):
        link = row.css_first(source.link_selector)
        if link is None:
            continue
        url = urljoin(base_url, link.attributes.get("href") or "")
        date = row.css_first(source.date_selector)
        title = (link.attributes.get("title") or link.text()).strip()
        yield Listing(
            key=url,
            title=title,
            url=url,
            published_at=parse_datetime(date.text()) if date is not None else None,
            text=html_text(row.html or ""),
        )


def parse_listing(body: bytes, source: TenderSource, base_url: str) -> list[Listing]:
    if source.kind in ("rss", "atom"):
        return list(parse_feed(body, base_url))
    if source.kind == "json":
        return list(parse_json(body, source, base_url))
    return list(parse_html(body, source, base_url))
