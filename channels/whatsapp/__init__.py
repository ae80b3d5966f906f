"""The WhatsApp channel, through Twilio's Messages API and its signed webhooks."""

from channels.whatsapp.channel import WhatsAppChannel

__all__ = ["WhatsAppChannel"]
