"""Server-signed tokens: widget visitor tokens and expiring media links."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import math
import re
import secrets
import time
from collections.abc import Mapping
from typing import Any

from gateway.model import IdentityRef

WIDGET_CHANNEL = "webwidget"
WIDGET_ACCOUNT = "web"

_VISITOR_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Signer:
    """HMAC-SHA256 signed, URL-safe tokens carrying a small JSON payload."""

    def __init__(self, secret: str | bytes, purpose: str) -> None:
        secret = secret.encode() if isinstance(secret, str) else secret
        # One key per purpose, so a media link can never pass as a visitor token.
        self._key = hmac.new(secret, purpose.encode(), hashlib.sha256).digest()

    def sign(self, payload: Mapping[str, Any], ttl: float | None = None) -> str:
        body = dict(payload)
        if ttl is not None:
            body["exp"] = int(time.time() + ttl)
        encoded = _b64(json.dumps(body, separators=(",", ":"), sort_keys=True).encode())
        return f"{encoded}.{self._mac(encoded)}"

    def verify(self, token: str) -> dict[str, Any] | None:
        """The payload of a genuine, unexpired token; None for anything else."""
        if not token.isascii():  # what we sign is ASCII; anything else (a lone surrogate, too) is forged
            return None
        encoded, _, mac = token.partition(".")
        if not encoded or not hmac.compare_digest(mac, self._mac(encoded)):
            return None
        try:
            payload = json.loads(_unb64(encoded))
        except (binascii.Error, ValueError):
            return None
        if not isinstance(payload, dict):
            return None
        expires = payload.get("exp", math.inf)
        if type(expires) not in (int, float) or expires < time.time():
            return None
        return payload

    def _mac(self, encoded: str) -> str:
        return _b64(hmac.new(self._key, encoded.encode(), hashlib.sha256).digest())


class VisitorTokens:
    """Issues and checks the tokens that tie a widget visitor to their own conversation."""

    def __init__(self, secret: str) -> None:
        self._signer = Signer(secret, "widget-visitor")

    def issue(self) -> tuple[str, IdentityRef]:
        visitor_id = secrets.token_urlsafe(16)
        return self._signer.sign({"v": visitor_id}), self.ref(visitor_id)

    def identity(self, token: str) -> IdentityRef | None:
        payload = self._signer.verify(token)
        visitor_id = payload.get("v") if payload else None
        # Ids we issue are URL-safe base64; anything else was never ours (or was signed by a leaked secret).
        return self.ref(visitor_id) if isinstance(visitor_id, str) and _VISITOR_ID.fullmatch(visitor_id) else None

    @staticmethod
    def ref(visitor_id: str) -> IdentityRef:
        return IdentityRef(WIDGET_CHANNEL, WIDGET_ACCOUNT, visitor_id)
