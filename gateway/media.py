"""Files that live inside a messenger: who can fetch them, and signed, expiring gateway URLs to them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from bson import ObjectId
from bson.errors import InvalidId

from gateway.model import Media
from gateway.tokens import Signer

LINK_TTL = 24 * 3600.0

MediaFetcher = Callable[[Media], Awaitable[bytes]]


class MediaSources:
    """Who can fetch a file, by its `source` (a channel name, or the operator bot)."""

    def __init__(self) -> None:
        self._fetchers: dict[str, MediaFetcher] = {}

    def add(self, source: str, fetch: MediaFetcher) -> None:
        """Let `fetch` provide the files of `source`."""
        self._fetchers[source] = fetch

    async def fetch(self, media: Media) -> bytes:
        """The bytes of a file; LookupError when nothing can provide it, SendError when the fetch failed."""
        fetch = self._fetchers.get(media.source)
        if fetch is None:
            raise LookupError(f"no source {media.source!r} can provide this file")
        return await fetch(media)


class MediaLinks:
    """Makes and checks `/media/<token>` links to one file of one stored message."""

    def __init__(self, secret: str, public_url: str, ttl: float = LINK_TTL) -> None:
        self._signer = Signer(secret, "media-link")
        self.public_url = public_url.rstrip("/")
        self.ttl = ttl

    def url(self, message_id: ObjectId, index: int) -> str:
        return f"{self.public_url}/media/{self._signer.sign({'m': str(message_id), 'i': index}, ttl=self.ttl)}"

    def resolve(self, token: str) -> tuple[ObjectId, int] | None:
        """The message and file index a genuine, unexpired token points at."""
        payload = self._signer.verify(token) or {}
        index = payload.get("i")
        if type(index) is not int or index < 0:
            return None
        try:
            return ObjectId(payload.get("m")), index
        except (InvalidId, TypeError):
            return None
