"""Signed, expiring gateway URLs for files that only exist inside a messenger."""

from __future__ import annotations

from bson import ObjectId
from bson.errors import InvalidId

from gateway.tokens import Signer

LINK_TTL = 24 * 3600.0


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
        payload = self._signer.verify(token)
        if payload is None or not isinstance(payload.get("i"), int):
            return None
        try:
            return ObjectId(payload.get("m")), payload["i"]
        except (InvalidId, TypeError):
            return None
