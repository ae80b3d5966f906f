"""The channel registry: every messenger adapter the gateway knows, by name, imported only when switched on."""

from __future__ import annotations

import importlib
import logging
from typing import Final

from channels.base import Channel, ChannelHost
from gateway.config import Settings
from gateway.http import HttpClient

logger = logging.getLogger(__name__)

# name (also the settings section that switches it on) -> "module:class"
ADAPTERS: Final[dict[str, str]] = {
    "telegram": "channels.telegram.channel:TelegramChannel",
    "whatsapp": "channels.whatsapp.channel:WhatsAppChannel",
    "webwidget": "channels.webwidget.channel:WebWidgetChannel",
}


def adapter(name: str) -> type[Channel]:
    """The adapter class of a channel, imported on first use."""
    module, _, cls = ADAPTERS[name].partition(":")
    found: type[Channel] = getattr(importlib.import_module(module), cls)
    return found


def build_channels(settings: Settings, host: ChannelHost, http: HttpClient) -> dict[str, Channel]:
    """The channels the settings switch on, by name; an adapter whose section is absent is never imported."""
    built = {}
    for name in ADAPTERS:
        if getattr(settings, name, None) is None:
            continue
        channel = adapter(name).from_settings(settings, host, http)
        if channel is not None:
            built[name] = channel
    logger.info("channels enabled: %s", ", ".join(built) or "none")
    return built
