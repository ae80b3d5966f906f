"""The widget in a real browser: headless Chromium opens the demo page and holds a conversation."""

from __future__ import annotations

import re
import shutil
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from bson import ObjectId

from gateway.keys import OUTBOX, STORE
from gateway.model import MessageStatus
from tests.helpers import AUTH, eventually, settle

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="no Chromium found (Debian: apt-get install chromium; .ci/run installs it)"
)

# Chromium as root in a container, with no network beyond localhost and no first-run noise.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
async def server(serve: Any) -> TestClient:
    return await serve()


@pytest.fixture
async def page(tmp_path: Any) -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = await browser.new_context()
        yield await context.new_page()
        await browser.close()


async def test_visitor_chats_with_an_operator_in_a_real_browser(server: TestClient, page: Any) -> None:
    from playwright.async_api import expect

    await page.goto(str(server.make_url("/widget/demo")))
    widget = page.locator("#gw-widget-root")
    await widget.locator("#gw-launcher").click()
    await expect(widget.locator("#gw-panel")).to_be_visible()
    await expect(widget.locator("#gw-status")).to_have_attribute("data-state", "online")

    await widget.locator("#gw-input").fill("Hello from a real browser")
    await widget.locator("#gw-send").click()
    sent = widget.locator(".gw-msg.gw-visitor")
    await expect(sent).to_have_count(1)
    await expect(sent.first).not_to_have_class(re.compile(r"\bgw-pending\b"))  # acknowledged

    store = server.app[STORE]
    threads = await store.threads.find()
    assert len(threads) == 1
    stored = await store.messages.for_thread(threads[0].id)
    assert [m.content.text for m in stored] == ["Hello from a real browser"]
    visitor = (await store.contacts.get(threads[0].contact_id)).visitor
    assert "Chrome" in visitor["browser"] and visitor["os"] == "Linux"  # headless Chromium says HeadlessChrome
    assert visitor["url"].endswith("/widget/demo")

    # The operator is shown typing while their reply is on its way, and no longer once it is there.
    await page.evaluate(
        """() => {
            const hint = document.getElementById("gw-widget-root").shadowRoot.querySelector("#gw-typing");
            window.typingShown = false;
            new MutationObserver(() => { if (!hint.hidden) window.typingShown = true; })
                .observe(hint, { attributes: true });
        }"""
    )
    reply = await server.post(
        f"/api/v1/threads/{threads[0].number}/messages",
        headers=AUTH,
        json={"text": "Hi! How can I help?", "author_name": "Maria"},
    )
    assert reply.status == 201
    answer = widget.locator(".gw-msg.gw-operator")
    await expect(answer).to_have_count(1)
    await expect(answer.locator(".gw-text")).to_have_text("Hi! How can I help?")
    await expect(answer.locator(".gw-author")).to_have_text("Maria")
    assert await page.evaluate("() => window.typingShown")
    await expect(widget.locator("#gw-typing")).to_be_hidden()

    # Shown in the open panel, the answer is reported read; an edit changes it in place.
    answer_id = (await reply.json())["id"]

    async def read() -> bool:
        message = await store.messages.get(ObjectId(answer_id))
        return message is not None and message.status is MessageStatus.READ

    await eventually(read, "the widget's read frame")
    message = await store.messages.get(ObjectId(answer_id))
    assert message is not None
    await server.app[OUTBOX].edit(message, "Hi! How may I help?")
    await expect(answer.locator(".gw-text")).to_have_text("Hi! How may I help?")

    # History comes back after a reload.
    await page.reload()
    await widget.locator("#gw-launcher").click()
    await expect(widget.locator(".gw-msg")).to_have_count(2)
    await settle(server.app)
