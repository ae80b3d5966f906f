"""What customers tell us about themselves: the card behind an identity, and what a profile adds to it."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from channels.base import InboundMessage, Profile
from gateway.config import Settings
from gateway.contacts import normalize_email, normalize_phone
from gateway.events import ContactChanged, EventBus, VisitorActivity
from gateway.model import Contact, Identity, IdentityRef, utcnow
from gateway.storage.mongo import Storage


class Profiles:
    """Finds or creates the card of an identity and teaches it names, phones, e-mails and visitor details."""

    def __init__(self, store: Storage, bus: EventBus, settings: Settings) -> None:
        self.store = store
        self.bus = bus
        self.settings = settings

    async def sender_of(self, inbound: InboundMessage, now: datetime) -> tuple[Contact, bool]:
        """The card of a message's sender (created on first sight: then True), with what the message tells us.

        One write for a known sender; a card being merged comes back as it is (`merging`): the caller follows it.
        """
        ref, profile = inbound.sender, inbound.profile
        identity_fields: dict[str, Any] = {"last_inbound_at": now, "reachable": True, "unreachable_reason": None}
        if profile.display_name:
            identity_fields["display_name"] = profile.display_name
        if profile.username:
            identity_fields["username"] = profile.username
        contact = await self.store.contacts.update_identity(ref.key, now, **identity_fields)
        contact = await self._not_erased(contact, ref.key)
        created = False
        if contact is None:
            identity = Identity(
                key=ref.key, channel=ref.channel, account=ref.account, external_id=ref.external_id, **identity_fields
            )
            contact, created = await self.store.contacts.create(identity, now, language=profile.language)
        return await self.learn(contact, profile, now), created

    async def learn_about(self, sender: IdentityRef, profile: Profile, *, create: bool = False) -> bool:
        """Update the contact behind an identity; create it only when asked."""
        contact = await self._not_erased(await self.store.contacts.owner(sender.key), sender.key)
        if contact is None:
            if not create:
                return False
            contact = await self.contact_for(sender, profile)
        await self.learn(contact, profile, utcnow())
        return True

    async def contact_for(self, sender: IdentityRef, profile: Profile | None = None) -> Contact:
        """The contact behind an identity, created on first sight."""
        contact = await self._not_erased(await self.store.contacts.owner(sender.key), sender.key)
        if contact is not None:
            return contact
        profile = profile or Profile()
        identity = Identity(
            key=sender.key,
            channel=sender.channel,
            account=sender.account,
            external_id=sender.external_id,
            display_name=profile.display_name,
            username=profile.username,
        )
        contact, _ = await self.store.contacts.create(identity, utcnow(), language=profile.language)
        return contact

    async def _not_erased(self, contact: Contact | None, key: str) -> Contact | None:
        """The card, unless it is being erased: then the identity comes off it (the erasure would take it off too),
        so that the person's new message starts a fresh card."""
        if contact is None or contact.erase_id is None:
            return contact
        await self.store.contacts.pull_identity(contact.id, key)
        return None

    async def update_contact(
        self,
        contact: Contact,
        *,
        name: str | None = None,
        phone: str | None = None,
        email: str | None = None,
        attributes: Mapping[str, Any] | None = None,
    ) -> Contact:
        """Set customer info from the API or an operator."""
        fields = {f"attributes.{k}": v for k, v in (attributes or {}).items()}
        return await self.learn(contact, Profile(name=name, phone=phone, email=email), utcnow(), fields)

    async def learn(
        self, contact: Contact, profile: Profile, now: datetime, extra: Mapping[str, Any] | None = None
    ) -> Contact:
        """Add what a profile tells us to the card; publish ContactChanged when phones or e-mails were added."""
        set_fields: dict[str, Any] = dict(extra or {})
        if profile.name:
            set_fields["name"] = profile.name.strip()
        if profile.language and not contact.language:
            set_fields["language"] = profile.language
        phones, other_phones, emails, verified = [], [], [], []
        phone = email = None
        if profile.phone:
            phone = normalize_phone(profile.phone, self.settings.contacts.default_region)
            if phone is None:
                other_phones.append(profile.phone.strip())
            elif phone not in contact.phones:
                phones.append(phone)
            if phone and profile.phone_verified and phone not in contact.verified_phones:
                verified.append(phone)
        if profile.email:
            email = normalize_email(profile.email)
            if email and email not in contact.emails:
                emails.append(email)
        push: dict[str, Any] = {}
        privacy = self.settings.privacy
        # What the privacy settings say not to keep; a card that has it from before loses it now.
        withheld = ([] if privacy.store_ip else ["ip"]) + ([] if privacy.store_navigation else ["referrer", "pages"])
        unset = [f"visitor.{k}" for k in withheld if k in (contact.visitor or {})]
        if profile.visitor:
            known = contact.visitor or {}
            # Only what changed: every widget message carries the visitor's details again.
            changed = {
                k: v for k, v in profile.visitor.items() if v is not None and known.get(k) != v and k not in withheld
            }
            page = changed.get("url") if privacy.store_navigation else None
            if changed:
                set_fields |= {f"visitor.{k}": v for k, v in changed.items()}
                set_fields["visitor.updated_at"] = now
            if page:
                push["visitor.pages"] = {
                    "$each": [{"url": page, "title": profile.visitor.get("title"), "at": now}],
                    "$slice": -50,
                }
        named = [v for v in (phone, email) if v]
        # Typed by the customer, a new value is unverified; named by anyone else, it no longer is.
        typed = [v for v in phones + emails if profile.typed]
        vouched = [v for v in named if not profile.typed and v in contact.unverified]
        if not (set_fields or phones or other_phones or emails or push or verified or vouched or unset):
            return contact
        updated = await self.store.contacts.update(
            contact.id,
            now,
            set_fields=set_fields,
            add_phones=phones,
            add_emails=emails,
            add_other_phones=other_phones,
            add_unverified=typed,
            remove_unverified=vouched,
            push=push,
            unset=unset,
        )
        if updated is None:
            return contact
        if updated.merged_into is not None and (live := await self.store.contacts.live(updated)).id != updated.id:
            return await self.learn(live, profile, now, extra)  # merged away meanwhile: teach the kept card
        if verified:
            updated = await self.store.contacts.add_verified_phone(updated.id, verified[0], now) or updated
        if (page := _changed_page(profile, set_fields)) is not None:
            self.bus.publish(VisitorActivity(contact=updated, kind="page", details=page))
        if profile.typed and (said := _identified(contact, set_fields, phones + other_phones, emails)):
            self.bus.publish(VisitorActivity(contact=updated, kind="identified", details=said))
        if phones or emails or verified:
            self.bus.publish(
                ContactChanged(
                    contact=updated,
                    new_phones=tuple(dict.fromkeys(phones + verified)),
                    new_emails=tuple(emails),
                    phone_verified=profile.phone_verified,
                )
            )
        return updated


def _changed_page(profile: Profile, set_fields: Mapping[str, Any]) -> tuple[tuple[str, str], ...] | None:
    """The page a visitor moved to, when this profile update changed it."""
    if "visitor.url" not in set_fields and "visitor.title" not in set_fields:
        return None
    visitor = profile.visitor or {}
    return tuple((k, str(visitor[k])) for k in ("url", "title") if visitor.get(k))


def _identified(
    contact: Contact, set_fields: Mapping[str, Any], phones: list[str], emails: list[str]
) -> tuple[tuple[str, str], ...]:
    """What a visitor said about themselves that the card did not know yet."""
    name = set_fields.get("name")
    said = [("name", str(name))] if name and name != contact.name else []
    said += [("phone", p) for p in phones] + [("email", e) for e in emails]
    return tuple(said)
