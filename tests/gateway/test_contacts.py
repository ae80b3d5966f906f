"""Normalisation of phones and e-mails, and duplicate duplicates found through the real hub."""

from __future__ import annotations

from datetime import timedelta

import pytest
from aiohttp.test_utils import TestClient
from bson import ObjectId

from channels.base import Profile
from gateway.contacts import name_similarity, normalize_email, normalize_phone
from gateway.duplicates import DismissOutcome
from gateway.events import DuplicateFound
from gateway.keys import BUS, CONVERSATIONS, DUPLICATES, INBOX, MERGER, PROFILES, SETTINGS, STORE
from gateway.model import (
    Contact,
    IdentityRef,
    Kind,
    OperatorStatus,
    SharedContact,
    utcnow,
)
from gateway.storage.duplicates import DuplicateStatus
from operators.presence import Presence
from operators.routing import Routing
from tests.helpers import AUTH, PHONE, TELEGRAM, WHATSAPP, Widget, collect, inbound, settle

FIVE_WAYS = ["+1 (415) 555-2671", "14155552671", "(415) 555-2671", "001 415 555 2671", "+1.415.555.2671"]


async def writes(gateway: TestClient, sender: IdentityRef, message_id: str, text: str = "hello", **kw):
    """A customer message, handed to the hub exactly as a channel does."""
    message = await gateway.app[INBOX].on_inbound(inbound(sender, message_id, text, **kw))
    await settle(gateway.app)
    return message


async def telegram_shares_own_number(gateway: TestClient, phone: str = "14155552671") -> None:
    """What the Telegram channel hands over when a user shares their own contact."""
    await writes(
        gateway,
        TELEGRAM,
        "5001:1",
        "",
        kind=Kind.CONTACT,
        shared_contact=SharedContact(name="Ann Lee", phones=(phone,), user_id=TELEGRAM.external_id),
        profile=Profile(display_name="Ann Lee", phone=phone, phone_verified=True),
    )


async def whatsapp_writes(gateway: TestClient, message_id: str = "SM1", text: str = "hi from WhatsApp") -> None:
    """What the WhatsApp channel hands over for an inbound message (the sender's WaId is verified)."""
    await writes(
        gateway,
        WHATSAPP,
        message_id,
        text,
        profile=Profile(display_name="Ann", phone="+14155552671", phone_verified=True),
    )


@pytest.fixture
async def desk(gateway: TestClient):
    """Routing and presence over the running app, with one online operator (id 1)."""
    app = gateway.app
    router = Routing(app[STORE], app[BUS], app[CONVERSATIONS], app[SETTINGS])
    router.subscribe()
    presence = Presence(app[STORE], app[BUS])
    await app[STORE].operators.upsert(1, name="Maria")
    await presence.set_status(1, OperatorStatus.ONLINE)
    return router


# -- normalisation ---------------------------------------------------------------------------


def test_the_same_number_written_five_ways_is_one_number() -> None:
    assert {normalize_phone(raw) for raw in FIVE_WAYS} == {PHONE}
    assert normalize_phone("whatsapp:+14155552671") == PHONE
    assert normalize_phone("030 1234567", "DE") == "+49301234567"  # national form in the configured region
    assert normalize_phone("12345") is None and normalize_phone("+1 555 555 0100") is None


def test_emails_are_trimmed_lower_cased_and_idna_normalised_without_provider_tricks() -> None:
    assert normalize_email("  Ann.Lee@Example.COM ") == "ann.lee@example.com"
    assert normalize_email("ann@Bücher.de") == "ann@xn--bcher-kva.de"
    # Gmail ignores dots and +tags, but that is a provider's rule, not an address's: no match.
    assert normalize_email("a.n.n+shop@gmail.com") == "a.n.n+shop@gmail.com"
    assert normalize_email("not-an-email") is None and normalize_email("a@b") is None


def test_names_compare_without_case_accents_punctuation_or_word_order() -> None:
    def card(name: str | None) -> Contact:
        return Contact(id=ObjectId(), created_at=utcnow(), updated_at=utcnow(), name=name)

    assert name_similarity(card("María-José García"), card("garcia, maria jose")) == 100
    assert name_similarity(card("Ann"), card("Ann Lee")) == 90  # a first name only still ranks high
    assert name_similarity(card("Ann Lee"), card("Bob Stone")) == 25
    assert name_similarity(card("Ann Lee"), card(None)) is None


async def test_the_same_number_written_five_ways_matches(gateway: TestClient) -> None:
    found = collect(gateway.app, DuplicateFound)
    store = gateway.app[STORE]
    for n, raw in enumerate(FIVE_WAYS):
        await writes(gateway, IdentityRef("webwidget", "web", f"v{n}"), f"v{n}:1", profile=Profile(phone=raw))

    cards = await store.contacts.by_phone(PHONE)
    assert len(cards) == 5 and {c.phones for c in cards} == {(PHONE,)}
    # Every card matches every earlier one: 4 + 3 + 2 + 1 pairs, each offered once.
    duplicates = await store.duplicates.pending()
    assert len(duplicates) == 10 and len(found) == 10
    assert {c.reason for c in duplicates} == {f"same phone {PHONE}"}


async def test_invalid_numbers_are_kept_as_typed_but_never_matched(gateway: TestClient) -> None:
    store = gateway.app[STORE]
    for who in ("a", "b"):
        await writes(gateway, IdentityRef("webwidget", "web", who), f"{who}:1", profile=Profile(phone="555-0100 ext 7"))
    contacts = await store.contacts.collection.find().to_list()
    assert [c["other_phones"] for c in contacts] == [["555-0100 ext 7"]] * 2
    assert [c["phones"] for c in contacts] == [[], []]
    assert await store.duplicates.collection.count_documents({}) == 0


# -- duplicates from every source ------------------------------------------------------------


async def test_customer_info_api_with_a_known_email_creates_a_candidate_not_a_merge(gateway: TestClient) -> None:
    found = collect(gateway.app, DuplicateFound)
    store = gateway.app[STORE]
    await writes(gateway, TELEGRAM, "5001:1", profile=Profile(display_name="Ann Lee"))
    telegram_card = await store.contacts.by_identity(TELEGRAM.key)
    await writes(gateway, IdentityRef("webwidget", "web", "v1"), "v1:1")
    web_card = await store.contacts.by_identity("webwidget:web:v1")
    await gateway.app[PROFILES].update_contact(telegram_card, email="ann@example.com")

    response = await gateway.patch(
        f"/api/v1/contacts/{web_card.id}", headers=AUTH, json={"name": "Ann Lee", "email": " ANN@example.com"}
    )
    assert response.status == 200
    await settle(gateway.app)

    assert len(found) == 1
    offer = found[0]
    assert offer.contact.id == web_card.id and offer.other.id == telegram_card.id
    assert offer.duplicate.reason == "same e-mail ann@example.com; names 100% alike"
    assert offer.other_thread.channel == "telegram" and offer.contact_thread.channel == "webwidget"
    # Never a silent merge: both cards are still live and separate.
    assert {c.id for c in await store.contacts.by_email("ann@example.com")} == {web_card.id, telegram_card.id}


async def test_widget_identify_with_a_known_phone_creates_a_candidate(gateway: TestClient) -> None:
    found = collect(gateway.app, DuplicateFound)
    store = gateway.app[STORE]
    await whatsapp_writes(gateway)
    widget = await Widget.connect(gateway)
    await widget.ws.send_json({"type": "identify", "name": "Ann Lee", "phone": "(415) 555-2671"})
    await widget.say("hello from the website", "c-1")  # frames are handled in order: identify is done
    await settle(gateway.app)
    await widget.close()

    assert len(found) == 1
    assert found[0].other.id == (await store.contacts.by_identity(WHATSAPP.key)).id
    assert found[0].duplicate.reason == f"same phone {PHONE} (unverified: typed in the widget); names 90% alike"
    assert found[0].duplicate.status is DuplicateStatus.OPEN


async def test_telegram_share_and_whatsapp_number_make_one_candidate_offered_to_the_operator(
    gateway: TestClient, desk: Routing
) -> None:
    found = collect(gateway.app, DuplicateFound)
    store = gateway.app[STORE]
    await whatsapp_writes(gateway)
    await telegram_shares_own_number(gateway)
    await whatsapp_writes(gateway, "SM2", "still there?")  # the same number again adds nothing

    assert len(found) == 1 and await store.duplicates.collection.count_documents({}) == 1
    offer = found[0]
    telegram_card = await store.contacts.by_identity(TELEGRAM.key)
    whatsapp_card = await store.contacts.by_identity(WHATSAPP.key)
    assert {offer.contact.id, offer.other.id} == {telegram_card.id, whatsapp_card.id}
    # Both numbers were vouched for by their channel, but auto_merge_verified is off: an offer, no merge.
    assert offer.duplicate.reason == f"same phone {PHONE} (verified on both); names 90% alike"
    assert telegram_card.verified_phones == (PHONE,) and whatsapp_card.verified_phones == (PHONE,)
    assert telegram_card.merged_into is None and whatsapp_card.merged_into is None
    # The offer names both conversations; whoever handles either one gets it.
    threads = [await store.threads.open_for(c) for c in (telegram_card.id, whatsapp_card.id)]
    assert {offer.contact_thread.id, offer.other_thread.id} == {t.id for t in threads}
    assert {t.operator_id for t in threads} == {1}
    assert [o.duplicate.id for o in await gateway.app[DUPLICATES].for_contact(telegram_card.id)] == [offer.duplicate.id]


async def test_names_rank_and_explain_candidates_but_never_match(gateway: TestClient) -> None:
    store = gateway.app[STORE]
    profiles = gateway.app[PROFILES]
    ann = await profiles.contact_for(IdentityRef("webwidget", "web", "ann"))
    await profiles.update_contact(ann, name="Ann Lee", phone=PHONE, email="ann@example.com")
    other_ann = await profiles.contact_for(IdentityRef("webwidget", "web", "ann2"))
    await profiles.update_contact(other_ann, name="Anne Lee", phone=PHONE, email="ann@example.com")
    bob = await profiles.contact_for(IdentityRef("webwidget", "web", "bob"))
    await profiles.update_contact(bob, name="Bob Stone", phone=PHONE)
    namesake = await profiles.contact_for(IdentityRef("webwidget", "web", "namesake"))
    await profiles.update_contact(namesake, name="Ann Lee", phone="+1 212 555 0123")
    await settle(gateway.app)

    offers = await gateway.app[DUPLICATES].pending()
    assert [o.duplicate.reason for o in offers] == [
        f"same phone {PHONE}; same e-mail ann@example.com; names 93% alike",
        f"same phone {PHONE}; names 25% alike",
        f"same phone {PHONE}; names 24% alike",
    ]
    # The namesake shares nothing but a name: no duplicate at all.
    assert await store.duplicates.for_contact(namesake.id) == []


async def test_not_the_same_person_is_never_offered_again(gateway: TestClient, desk: Routing) -> None:
    found = collect(gateway.app, DuplicateFound)
    store, duplicates = gateway.app[STORE], gateway.app[DUPLICATES]
    await whatsapp_writes(gateway)
    await telegram_shares_own_number(gateway)
    duplicate = found[0].duplicate

    assert (await duplicates.dismiss(duplicate.id, by=2)).outcome is DismissOutcome.NOT_ALLOWED  # not their chat
    result = await duplicates.dismiss(duplicate.id, by=1)
    assert result.outcome is DismissOutcome.DISMISSED and result.duplicate.decided_by == 1
    assert (await duplicates.dismiss(duplicate.id, by=1)).outcome is DismissOutcome.ALREADY_DECIDED

    # The same pair matches again on a new e-mail, from either side: still dismissed, nothing offered.
    profiles = gateway.app[PROFILES]
    await profiles.update_contact(await store.contacts.by_identity(TELEGRAM.key), email="ann@example.com")
    await profiles.update_contact(await store.contacts.by_identity(WHATSAPP.key), email="ann@example.com")
    await settle(gateway.app)
    assert len(found) == 1
    stored = await store.duplicates.get(duplicate.id)
    assert stored.status is DuplicateStatus.DISMISSED and len(stored.matches) == 2
    assert await duplicates.pending() == []
    # Pressing Merge on the old offer does nothing either.
    assert not (await gateway.app[MERGER].merge_duplicate(duplicate.id, by=1)).ok


async def test_a_duplicate_check_a_stopped_process_never_made_is_made_by_the_sweep(gateway: TestClient) -> None:
    store, finder = gateway.app[STORE], gateway.app[DUPLICATES]
    await writes(gateway, TELEGRAM, "5001:1", profile=Profile(display_name="Ann Lee"))
    telegram_card = await store.contacts.by_identity(TELEGRAM.key)
    await gateway.app[PROFILES].update_contact(telegram_card, email="ann@example.com")
    await settle(gateway.app)
    assert (await store.contacts.get(telegram_card.id)).unchecked_since is None  # checked live, as usual

    # A process stored a web visitor's e-mail and died before its event was handled: no check, no candidate.
    await writes(gateway, IdentityRef("webwidget", "web", "v1"), "v1:1")
    web_card = await store.contacts.by_identity("webwidget:web:v1")
    stored = await store.contacts.update(web_card.id, utcnow(), add_emails=["ann@example.com"])
    assert stored is not None and stored.unchecked_since is not None
    assert await finder.sweep() == 0  # a check may still be under way in a live process: not yet
    assert await store.duplicates.for_contact(web_card.id, status=DuplicateStatus.OPEN) == []

    assert await finder.sweep(utcnow() + timedelta(minutes=1)) == 1
    [duplicate] = await store.duplicates.for_contact(web_card.id, status=DuplicateStatus.OPEN)
    assert set(duplicate.contact_ids) == {web_card.id, telegram_card.id}
    assert (await store.contacts.get(web_card.id)).unchecked_since is None
    assert await finder.sweep(utcnow() + timedelta(minutes=1)) == 0


async def test_a_card_changed_again_while_its_check_ran_stays_unchecked(gateway: TestClient) -> None:
    store = gateway.app[STORE]
    await writes(gateway, IdentityRef("webwidget", "web", "v1"), "v1:1")
    card = await store.contacts.by_identity("webwidget:web:v1")
    first = await store.contacts.update(card.id, utcnow(), add_emails=["ann@example.com"])
    later = await store.contacts.update(card.id, utcnow() + timedelta(seconds=1), add_phones=["+14155552671"])
    assert first is not None and later is not None and first.unchecked_since is not None
    await store.contacts.checked(card.id, first.unchecked_since)  # the first change's check is done
    assert (await store.contacts.get(card.id)).unchecked_since == later.unchecked_since
