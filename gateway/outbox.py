"""Sending stored outbound messages: in order per thread, retried with backoff, never dropped."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from bson import ObjectId

from channels.base import Channel, ChannelCapabilityError, DeliveryUpdate, OutboundMessage, SendError
from gateway.config import DeliverySettings
from gateway.events import EventBus, MessageStatusChanged
from gateway.logs import log_context
from gateway.metrics import Metrics
from gateway.model import Direction, Media, Message, MessageStatus, Thread, utcnow
from gateway.storage.mongo import Storage

logger = logging.getLogger(__name__)

# How long a worker owns a message it is sending; after that another worker may retry it.
LEASE = timedelta(seconds=120)


class Outbox:
    """Hands queued messages to their channel and keeps their delivery status."""

    def __init__(
        self,
        store: Storage,
        channels: Mapping[str, Channel],
        bus: EventBus,
        metrics: Metrics,
        settings: DeliverySettings,
        media_url: Callable[[ObjectId, int], str] | None = None,
    ) -> None:
        self.store = store
        self.channels = channels
        self.bus = bus
        self.metrics = metrics
        self.settings = settings
        self.media_url = media_url
        self._wake = asyncio.Event()

    @staticmethod
    def lease_until(now: datetime) -> datetime:
        return now + LEASE

    async def submit(self, message: Message, thread: Thread, *, quoted: Message | None = None) -> Message:
        """Send a freshly stored message of `thread` now, unless an earlier one of the thread still waits.

        `quoted`: the message it answers, when the caller has it at hand (it is not read again).
        """
        if await self.store.messages.older_pending(message):
            self._wake.set()
            return await self._reschedule(message, utcnow()) or message
        return await self._attempt(message, thread, quoted)

    async def run(self) -> None:
        """Retry due messages until cancelled; the queue lives in MongoDB, so it survives restarts."""
        while True:
            now = utcnow()
            try:
                message = await self.store.messages.claim_due(now, self.lease_until(now))
            except Exception:  # storage trouble: keep the worker alive and look again shortly
                logger.exception("outbox could not read the queue")
                await asyncio.sleep(self.settings.poll_seconds)
                continue
            if message is None:
                self._wake.clear()
                # asyncio.timeout, not wait_for: in Python 3.11 wait_for can swallow the cancellation that stops us.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.settings.poll_seconds):
                        await self._wake.wait()
                continue
            try:
                older = await self.store.messages.older_pending(message)
                if older:
                    # Keep the thread's order: wait behind the earlier message.
                    await self._reschedule(message, now + timedelta(seconds=self.settings.poll_seconds))
                else:
                    await self._attempt(message)
            except Exception:
                logger.exception("outbox failed on message %s", message.id)

    async def retry(self, message: Message) -> bool:
        """Queue a failed message for another round of attempts; False if it has not failed."""
        retried = await self.store.messages.requeue_failed(message.id, utcnow())
        if retried is None:
            return False
        self._wake.set()
        await self._publish(retried)
        return True

    def can_edit(self, channel: str) -> bool:
        """Whether messages a channel delivered can be changed at all."""
        adapter = self.channels.get(channel)
        return adapter is not None and adapter.can_edit

    async def edit(self, message: Message, text: str) -> Message:
        """Change what an outbound message says: in the customer's copy when they have it, else in what will be
        sent. Raises SendError (ChannelCapabilityError where the channel cannot edit); a refused edit changes
        nothing, so the stored text is always what the customer has or will get."""
        if message.status in (MessageStatus.QUEUED, MessageStatus.FAILED):
            edited = await self.store.messages.record_edit(message.id, text, utcnow())
            return edited or message
        channel = self.channels.get(message.channel)
        if channel is None:
            raise SendError(f"the {message.channel} channel is not configured", code="unavailable", permanent=True)
        if not channel.can_edit:
            raise ChannelCapabilityError(f"{message.channel} cannot change a message once it is sent")
        changed = dataclasses.replace(message, content=dataclasses.replace(message.content, text=text))
        with log_context(channel=message.channel):
            await channel.edit(await self._outbound(changed, None), message.channel_message_id)
        edited = await self.store.messages.record_edit(message.id, text, utcnow())
        return edited or changed

    async def record_delivery(self, update: DeliveryUpdate) -> None:
        """Apply a delivery report, never moving a status backwards; one that overtook its message's send waits
        for the send to store the channel's id."""
        if await self._advance(update):
            return
        if update.identity is not None and not await self._sent_to(update):
            return  # the recipient's own report, of a message that is not theirs: nothing to park
        channel, account, channel_id = update.channel, update.account, update.channel_message_id
        if await self.store.messages.by_channel_id(channel, account, channel_id) is not None:
            # Stored by now: the send stored its id since the first try, or the report is older than the status.
            if not await self._advance(update):
                logger.info("delivery report %s for %s ignored: the message is past it", update.status, channel_id)
            return
        # The provider can call back before we have stored the id its send returned.
        await self.store.messages.park_report({**dataclasses.asdict(update), "at": utcnow()})
        # The send may have stored the id, and taken the parked reports, since we looked: then nobody else will.
        if await self.store.messages.by_channel_id(channel, account, channel_id) is not None:
            await self._take_parked(channel, account, channel_id)

    async def _advance(self, update: DeliveryUpdate) -> bool:
        """Move the reported message's status forward; whether it moved."""
        message = await self.store.messages.advance_status(
            update.channel,
            update.account,
            update.channel_message_id,
            update.status,
            error=update.error,
            error_code=update.error_code,
            now=utcnow(),
            identity=update.identity,
        )
        if message is None:
            return False
        if update.status is MessageStatus.FAILED:
            self.metrics.send_failures.labels(update.channel, update.error_code or "failed").inc()
        await self._publish(message)
        return True

    async def _take_parked(self, channel: str, account: str, channel_id: str) -> bool:
        """Apply the reports parked for a message whose channel id is stored now; whether there were any."""
        reports = await self.store.messages.take_reports(channel, account, channel_id)
        for report in reports:
            await self._advance(_update(report))  # two takers may apply one report: the second moves nothing
        return bool(reports)

    async def _sent_to(self, update: DeliveryUpdate) -> bool:
        """Whether a recipient's own report names (by our id, as the widget does) a message sent to them."""
        if not ObjectId.is_valid(update.channel_message_id):
            return False
        message = await self.store.messages.get(ObjectId(update.channel_message_id))
        return message is not None and message.identity == update.identity and message.direction is Direction.OUT

    async def _attempt(self, message: Message, thread: Thread | None = None, quoted: Message | None = None) -> Message:
        with log_context(channel=message.channel):
            channel = self.channels.get(message.channel)
            if channel is None:
                return await self._failed(
                    message,
                    SendError(f"the {message.channel} channel is not configured", code="unavailable", permanent=True),
                )
            try:
                thread = thread or await self.store.threads.get(message.thread_id)
                outbound = await self._outbound(message, thread, quoted)
                ref = await channel.send(outbound)
            except SendError as err:
                return await self._failed(message, err)
            except Exception as err:  # noqa: BLE001 - network trouble and the like: worth another try
                logger.warning("send of %s raised %r", message.id, err)
                return await self._failed(
                    message, SendError(f"could not reach {message.channel}: {err}", code="unavailable")
                )
            now = utcnow()
            sent = await self.store.messages.update(
                message.id,
                {
                    "status": ref.status.value,
                    "channel_message_id": ref.channel_message_id,
                    "sent_at": now,
                    "next_attempt_at": None,
                    "error": None,
                    "error_code": None,
                    "attempts": message.attempts + 1,
                },
            )
            self.metrics.messages_out.labels(message.channel).inc()
            logger.info("message %s %s", message.id, ref.status)
            await self._publish(sent, thread)
            if (
                ref.channel_message_id
                and channel.reports_delivery
                and await self._take_parked(message.channel, message.account or "", ref.channel_message_id)
            ):
                sent = await self.store.messages.get(message.id)
            return sent or message

    async def _failed(self, message: Message, err: SendError) -> Message:
        attempts = message.attempts + 1
        self.metrics.send_failures.labels(message.channel, err.code).inc()
        now = utcnow()
        if err.unreachable and message.identity:
            await self.store.contacts.update_identity(
                message.identity, now, reachable=False, unreachable_reason=err.reason
            )
        if err.permanent or attempts >= self.settings.max_attempts:
            reason = err.reason if err.permanent else f"{err.reason} (gave up after {attempts} attempts)"
            logger.warning("message %s failed: %s", message.id, reason)
            fields: dict[str, Any] = {"status": MessageStatus.FAILED.value, "next_attempt_at": None}
        else:
            delay = err.retry_after or min(
                self.settings.retry_base_seconds * 3 ** (attempts - 1), self.settings.retry_max_seconds
            )
            reason = err.reason
            logger.info("message %s not sent (%s); retry %d in %.0fs", message.id, reason, attempts, delay)
            fields = {"status": MessageStatus.QUEUED.value, "next_attempt_at": now + timedelta(seconds=delay)}
            self._wake.set()
        updated = await self.store.messages.update(
            message.id, {**fields, "error": reason, "error_code": err.code, "attempts": attempts}
        )
        await self._publish(updated)
        return updated or message

    async def _reschedule(self, message: Message, at: datetime) -> Message | None:
        return await self.store.messages.update(message.id, {"next_attempt_at": at})

    async def _outbound(
        self, message: Message, thread: Thread | None, quoted: Message | None = None
    ) -> OutboundMessage:
        """The channel's view of a stored message: recipient, reply target, reachable media."""
        contact = await self.store.contacts.get(message.contact_id)
        identity = contact.identity(message.identity or "") if contact else None
        if identity is None:
            raise SendError("the customer's channel identity no longer exists", code="unavailable", permanent=True)
        content, quoted_id = message.content, None
        if content.reply_to is not None:
            # Inside, the quoted message is named by our id; the channel knows it by its own.
            original = quoted
            if original is None or str(original.id) != content.reply_to:
                original = await self.store.messages.get(ObjectId(content.reply_to))
            ours = original is not None and original.identity == message.identity
            quoted_id = content.reply_to if ours else None
            content = dataclasses.replace(content, reply_to=original.channel_message_id if ours and original else None)
        content = dataclasses.replace(
            content, media=tuple(self._reachable(message, i, m) for i, m in enumerate(content.media))
        )
        return OutboundMessage(
            message_id=str(message.id),
            thread_number=thread.number if thread else 0,
            recipient=identity.ref,
            content=content,
            author=message.author,
            author_name=message.author_name,
            created_at=message.created_at,
            last_inbound_at=identity.last_inbound_at,
            quoted_id=quoted_id,
        )

    def _reachable(self, message: Message, index: int, media: Media) -> Media:
        """Give a file without a public URL a signed gateway link, for channels that fetch by URL."""
        if media.url or self.media_url is None:
            return media
        return dataclasses.replace(media, url=self.media_url(message.id, index))

    async def _publish(self, message: Message | None, thread: Thread | None = None) -> None:
        if message is None:
            return
        thread = thread or await self.store.threads.get(message.thread_id)
        if thread is not None:
            self.bus.publish(MessageStatusChanged(thread=thread, message=message))


def _update(report: dict) -> DeliveryUpdate:
    return DeliveryUpdate(
        channel=report["channel"],
        account=report["account"],
        channel_message_id=report["channel_message_id"],
        status=MessageStatus(report["status"]),
        error=report.get("error"),
        error_code=report.get("error_code"),
    )
