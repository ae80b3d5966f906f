"""The channel registry: every messenger adapter the gateway knows, by name."""

from __future__ import annotations

import logging

from channels.base import Channel, ChannelHost
from channels.telegram import TelegramChannel
from channels.webwidget import WebWidgetChannel
from channels.whatsapp import WhatsAppChannel
from gateway.config import Settings

logger = logging.getLogger(__name__)

CHANNELS: dict[str, type[Channel]] = {c.name: c for c in (TelegramChannel, WhatsAppChannel, WebWidgetChannel)}


def build_channels(settings: Settings, host: ChannelHost) -> dict[str, Channel]:
    """The channels the settings switch on, by name."""
    built = {}
    for name, cls in CHANNELS.items():
        channel = cls.from_settings(settings, host)
        if channel is not None:
            built[name] = channel
    logger.info("channels enabled: %s", ", ".join(built) or "none")
    return built
