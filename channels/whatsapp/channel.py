"""WhatsApp through Twilio: signed webhooks in, the Messages API out, media fetched with account auth."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
from datetime import UTC, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlencode

from aiohttp import ClientError, ClientTimeout, encode_basic_auth, web
from multidict import MultiDict
from twilio.base.exceptions import TwilioRestException, TwilioServiceException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.request_validator import RequestValidator
from twilio.rest import Client
from yarl import URL

from channels.base import (
    Channel,
    ChannelCapabilityError,
    ChannelHost,
    HostUnavailable,
    OutboundMessage,
    SendError,
    SentRef,
    text_fallback,
)
from channels.whatsapp.errors import failure_reason, last_inbound_text, rest_error, window_reason
from channels.whatsapp.webhooks import CHANNEL, MalformedWebhook, parse_inbound, parse_status
from gateway.config import Settings, WhatsAppSettings
from gateway.http import HttpClient
from gateway.inputs import InputError, read_body, refusal
from gateway.logs import log_context
from gateway.model import Media, MessageStatus, utcnow
from gateway.splitter import split, utf16_len

logger = logging.getLogger(__name__)

INBOUND_PATH = "/channels/whatsapp/inbound"
STATUS_PATH = "/channels/whatsapp/status"
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>'
# The longest body Twilio takes for one WhatsApp message (error 21617 beyond it).
BODY_LIMIT = 1600
# WhatsApp's own limit for audio and video; larger files are refused with a reason.
MAX_MEDIA_BYTES = 16 * 1024 * 1024
# Twilio's webhooks are small forms; anything much larger is not from Twilio.
FORM_LIMIT = 64 * 1024
MAX_REDIRECTS = 3
REDIRECTS = frozenset({301, 302, 303, 307, 308})
# The SDK's async client sends no timeout to aiohttp, so a hung connection would stall the outbox.
REST_TIMEOUT = 30.0
MEDIA_TIMEOUT = ClientTimeout(total=120, sock_connect=10)


class WhatsAppChannel(Channel):
    """Customers write from WhatsApp; replies go out through Twilio, within WhatsApp's 24-hour rule."""

    name = CHANNEL
    reports_delivery = True

    def __init__(
        self, host: ChannelHost, settings: WhatsAppSettings, public_url: str, region: str, http: HttpClient
    ) -> None:
        super().__init__(host)
        self.http = http
        self.settings = settings
        self.account = settings.sender.removeprefix("whatsapp:")
        self.public_url = public_url.rstrip("/")
        self.region = region
        self._validator = RequestValidator(settings.auth_token)
        self._authorization = {"Authorization": encode_basic_auth(settings.account_sid, settings.auth_token)}
        self._api_origin = URL(settings.api_base).origin()
        self._media_hosts = frozenset(host.lower() for host in settings.media_hosts)
        self._twilio_http: AsyncTwilioHttpClient | None = None
        self._twilio: Client | None = None
        # Twilio sids of the parts of a multi-part message already accepted, so a retry does not repeat them.
        self._delivered: dict[str, list[str]] = {}

    @classmethod
    def from_settings(cls, settings: Settings, host: ChannelHost, http: HttpClient) -> WhatsAppChannel | None:
        if settings.whatsapp is None:
            return None
        return cls(host, settings.whatsapp, settings.server.public_url, settings.contacts.default_region, http)

    def register(self, app: web.Application) -> None:
        app.router.add_post(INBOUND_PATH, self.inbound)
        app.router.add_post(STATUS_PATH, self.status)

    async def start(self) -> None:
        """Open the Twilio REST client (customers' files come through the shared HTTP client)."""
        # No max_retries: the SDK would retry POSTs on 5xx and could send a message twice;
        # the outbox retries instead, with its own record of attempts.
        self._twilio_http = AsyncTwilioHttpClient()
        client = Client(self.settings.account_sid, self.settings.auth_token, http_client=self._twilio_http)
        # TWILIO_EDGE / TWILIO_REGION in the environment would rewrite api_base's host.
        client.edge = None
        client.region = None
        client.api.base_url = self.settings.api_base.rstrip("/")
        self._twilio = client
        logger.info("WhatsApp sender %s ready (Twilio API at %s)", self.account, client.api.base_url)

    async def close(self) -> None:
        self._twilio = None
        if self._twilio_http is not None:
            await self._twilio_http.close()
            self._twilio_http = None

    def ready(self) -> bool:
        return self._twilio is not None

    # -- webhooks ------------------------------------------------------------------------------

    async def inbound(self, request: web.Request) -> web.Response:
        """Twilio's incoming-message webhook: authenticate, normalise, store, then acknowledge.

        Nothing is fetched here (a shared contact's vCard is read when it is shown): Twilio waits 15 s at most.
        """
        with log_context(channel=self.name):
            form = await self._signed_form(request, INBOUND_PATH)
            try:
                message = parse_inbound(form, self.account)
            except MalformedWebhook as err:
                return await self._malformed("inbound", err, form)
            try:
                await self.host.on_inbound(message)
            except HostUnavailable as err:
                # Not acknowledged, so the failure shows in Twilio's debugger and Twilio may try again.
                logger.warning("WhatsApp message %s not stored now: %s", message.message_id, err)
                return web.Response(status=503, text="the message could not be stored; try again")
            except Exception as err:  # noqa: BLE001 - kept, and acknowledged: trying again would fail again
                await self.host.on_unreadable(f"whatsapp:{self.account}", f"{type(err).__name__}: {err}", _dump(form))
            return web.Response(text=EMPTY_TWIML, content_type="text/xml")

    async def status(self, request: web.Request) -> web.Response:
        """Twilio's status callback: record sent, delivered, read or failed."""
        with log_context(channel=self.name):
            form = await self._signed_form(request, STATUS_PATH)
            try:
                update = parse_status(form, self.account, self.settings.templates)
            except MalformedWebhook as err:
                return await self._malformed("status", err, form)
            if update is not None:
                try:
                    await self.host.on_delivery(update)
                except HostUnavailable as err:
                    logger.warning("WhatsApp status of %s not recorded now: %s", update.channel_message_id, err)
                    return web.Response(status=503, text="the status could not be recorded; try again")
            return web.Response(text=EMPTY_TWIML, content_type="text/xml")

    async def _malformed(self, hook: str, err: MalformedWebhook, form: MultiDict[str]) -> web.Response:
        """A signed webhook we cannot interpret: kept as a dead letter, and refused so Twilio's debugger shows it."""
        await self.host.on_unreadable(f"whatsapp:{self.account}", f"{hook} webhook: {err}", _dump(form))
        return web.Response(status=400, text=str(err))

    async def _signed_form(self, request: web.Request, path: str) -> MultiDict[str]:
        """The form, if X-Twilio-Signature covers our public URL and every parameter; else 403.

        Only the signature check reads the body (capped, and only as Twilio sends it: urlencoded);
        nothing in it is interpreted before the check passed.
        """
        try:
            body = await read_body(request, FORM_LIMIT)
        except InputError as err:
            raise refusal(err) from None
        form: MultiDict[str] = MultiDict()
        if request.content_type == "application/x-www-form-urlencoded":
            form.extend(parse_qsl(body.decode("latin-1"), keep_blank_values=True, errors="replace"))
        # Twilio signs the URL it was configured with, never the one a proxy hands us.
        url = self.public_url + path
        if request.rel_url.raw_query_string:
            url += "?" + request.rel_url.raw_query_string
        signature = request.headers.get("X-Twilio-Signature", "")
        if not signature or not self._validator.validate(url, form, signature):
            logger.warning(
                "WhatsApp webhook from %s refused: %s X-Twilio-Signature for %s",
                request.remote,
                "invalid" if signature else "missing",
                url,
            )
            raise web.HTTPForbidden(text="invalid Twilio signature")
        return form

    # -- sending -------------------------------------------------------------------------------

    async def send(self, message: OutboundMessage) -> SentRef:
        """Hand one message to Twilio (a text over WhatsApp's 1,600 in parts, in order); free-form messages only
        within WhatsApp's 24-hour window."""
        if self._twilio is None:
            raise SendError("the WhatsApp channel is not started", code="unavailable")
        calls = self._calls(self._create_params(message))
        sids = self._delivered.pop(message.message_id, [])
        try:
            for params in calls[len(sids) :]:
                sids.append(await self._create(params))
        except SendError as err:
            if sids and not err.permanent:  # a retry sends only the parts that did not go out
                self._delivered[message.message_id] = sids
            raise
        logger.info("message %s handed to Twilio as %s", message.message_id, ", ".join(sids))
        # Accepted by Twilio counts as sent: QUEUED means "still in our outbox" to the core, and a
        # message left there would hold back the rest of its thread until a callback arrived. The last
        # part stands for the message: when it is read, so is the rest.
        return SentRef(channel_message_id=sids[-1], status=MessageStatus.SENT)

    async def _create(self, params: dict[str, Any]) -> str:
        """One Messages API call; the new message's sid."""
        assert self._twilio is not None
        try:
            async with asyncio.timeout(REST_TIMEOUT):
                created = await self._twilio.messages.create_async(**params)
        except (TwilioRestException, TwilioServiceException) as err:
            raise rest_error(err, self.settings.templates) from err
        except TimeoutError:
            raise SendError(f"Twilio did not answer within {REST_TIMEOUT:.0f} s", code="unavailable") from None
        except (ClientError, OSError) as err:
            raise SendError(f"could not reach Twilio: {err}", code="unavailable") from err
        if created.status in ("failed", "undelivered", "canceled"):
            code = str(created.error_code) if created.error_code else None
            raise SendError(
                failure_reason(code, created.error_message, created.status, self.settings.templates),
                code="window_closed" if code == "63016" else "bad_request",
                permanent=True,
            )
        return str(created.sid)

    @staticmethod
    def _calls(params: dict[str, Any]) -> list[dict[str, Any]]:
        """The API calls for one message: a body over WhatsApp's limit in parts, the file with the first."""
        body = params.get("body")
        if body is None or utf16_len(body) <= BODY_LIMIT:
            return [params]
        first, *rest = [part.text for part in split(body, BODY_LIMIT)] or [body]
        return [params | {"body": first}] + [
            {k: v for k, v in params.items() if k != "media_url"} | {"body": part} for part in rest
        ]

    def _create_params(self, message: OutboundMessage) -> dict[str, Any]:
        params: dict[str, Any] = {
            "from_": self.settings.sender,
            "to": "whatsapp:" + message.recipient.external_id,
            "status_callback": self.public_url + STATUS_PATH,
        }
        content = message.content
        if content.template is not None:
            params["content_sid"] = content.template.content_sid
            if content.template.variables:
                params["content_variables"] = json.dumps(dict(content.template.variables), ensure_ascii=False)
            return params
        self._check_window(message)
        if len(content.media) > 1:
            # Twilio would silently drop every attachment after the first.
            raise ChannelCapabilityError("WhatsApp delivers one file per message: send the files one at a time")
        rich = content.location is not None or bool(content.buttons)
        body = text_fallback(dataclasses.replace(content, media=())) if rich else content.text
        if body:
            params["body"] = body
        if content.media:
            url = content.media[0].url
            if url is None:
                raise SendError("the file has no link Twilio could fetch it from", code="unsupported", permanent=True)
            params["media_url"] = [url]
        return params

    def _check_window(self, message: OutboundMessage) -> None:
        now = utcnow()
        last = message.last_inbound_at
        if last is not None and last.tzinfo is None:
            last = last.replace(tzinfo=UTC)
        if last is not None and now - last < timedelta(hours=self.settings.window_hours):
            return
        reason = window_reason(self.settings.templates, last_inbound_text(last, now))
        raise SendError(reason, code="window_closed", permanent=True)

    # -- files ---------------------------------------------------------------------------------

    async def fetch_media(self, media: Media) -> bytes:
        """A customer's file from Twilio, refused when larger than WhatsApp's 16 MB."""
        return await self._download(media.ref, MAX_MEDIA_BYTES)

    def _may_fetch(self, url: URL) -> bool:
        """Files come only from Twilio: the API's own origin, or (over HTTPS) a configured media host."""
        if url.origin() == self._api_origin:
            return True
        return url.scheme == "https" and (url.host or "").lower() in self._media_hosts

    async def _download(self, url: str, limit: int) -> bytes:
        if self._twilio is None:
            raise SendError("the WhatsApp channel is not started", code="unavailable")
        try:
            target = URL(url)
        except ValueError:
            raise SendError("the file's address is not a URL", code="unsupported", permanent=True) from None
        for _ in range(MAX_REDIRECTS + 1):
            if not target.is_absolute() or not self._may_fetch(target):
                raise SendError(f"files are fetched from Twilio only, not from {target.host or url!r}",
                                code="unsupported", permanent=True)  # fmt: skip
            # Account credentials go to Twilio's API origin only, never to a host a redirect names.
            headers = self._authorization if target.origin() == self._api_origin else None
            try:
                async with self.http.session.get(
                    target, headers=headers, allow_redirects=False, timeout=MEDIA_TIMEOUT
                ) as response:
                    if response.status in REDIRECTS and "Location" in response.headers:
                        target = target.join(URL(response.headers["Location"]))
                        continue
                    if response.status != 200:
                        raise SendError(
                            f"Twilio answered HTTP {response.status} for the file",
                            code="unavailable",
                            permanent=response.status in (401, 403, 404, 410),
                        )
                    data = bytearray()
                    async for chunk in response.content.iter_chunked(64 * 1024):
                        data += chunk
                        if len(data) > limit:
                            raise _too_large(limit)
                    return bytes(data)
            except TimeoutError:
                raise SendError("Twilio did not deliver the file in time", code="unavailable") from None
            except (ClientError, ValueError) as err:  # ValueError: a malformed redirect target
                raise SendError(f"could not download the file from Twilio: {err}", code="unavailable") from err
        raise SendError("too many redirects for the file", code="unavailable", permanent=True)


def _dump(form: MultiDict[str]) -> str:
    return urlencode(list(form.items()))


def _too_large(limit: int) -> SendError:
    size = f"{limit // (1024 * 1024)} MB" if limit >= 1024 * 1024 else f"{limit // 1024} KB"
    return SendError(
        f"the file is larger than {size}, the most the gateway takes from WhatsApp", code="too_large", permanent=True
    )
