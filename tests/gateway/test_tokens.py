"""Signed tokens: only what we signed, unexpired and of the shape we issue, is accepted."""

from __future__ import annotations

import time

from bson import ObjectId

from gateway.media import MediaLinks
from gateway.tokens import Signer, VisitorTokens

SECRET = "test-secret-0123456789"


def test_an_expiry_that_is_not_a_number_is_refused() -> None:
    signer = Signer(SECRET, "test")
    assert signer.verify(signer.sign({"x": 1}, ttl=60)) == {"x": 1, "exp": int(time.time() + 60)}
    for expiry in ("soon", None, [1], True):
        assert signer.verify(signer.sign({"x": 1, "exp": expiry})) is None
    assert signer.verify(signer.sign({"x": 1, "exp": time.time() - 1})) is None


def test_a_visitor_id_we_did_not_issue_is_refused() -> None:
    tokens = VisitorTokens(SECRET)
    token, ref = tokens.issue()
    assert tokens.identity(token) == ref
    signer = Signer(SECRET, "widget-visitor")  # what someone holding the secret could sign
    for forged in ("\ud800", "a/b", "", "x" * 65, 7, None):
        assert tokens.identity(signer.sign({"v": forged})) is None


def test_a_media_link_points_at_a_file_by_a_non_negative_index() -> None:
    links = MediaLinks(SECRET, "http://gateway.test")
    message = ObjectId()
    assert links.resolve(links.url(message, 0).rsplit("/", 1)[1]) == (message, 0)
    signer = Signer(SECRET, "media-link")
    for index in (-1, True, 1.0, "0", None):
        assert links.resolve(signer.sign({"m": str(message), "i": index})) is None
