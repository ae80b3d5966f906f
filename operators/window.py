"""WhatsApp's customer-care window, as operators see it."""

from __future__ import annotations

from datetime import timedelta

from gateway.model import Contact, Thread, utcnow


def window_closed(thread: Thread, contact: Contact, hours: float = 24.0) -> bool:
    """Whether WhatsApp's customer-care window of this conversation has closed (free-form replies fail)."""
    if thread.channel != "whatsapp":
        return False
    identity = contact.identity(thread.identity)
    last = identity.last_inbound_at if identity else None
    return last is None or utcnow() - last >= timedelta(hours=hours)
