"""The website chat widget channel."""

from channels.webwidget.channel import WebWidgetChannel

__all__ = ["WebWidgetChannel"]
