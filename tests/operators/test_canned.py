"""Canned replies: /canned add|remove|list, who may change them, and `!name` expanded in replies."""

from __future__ import annotations

from tests.operators.conftest import BOSS, OLGA, SAM, Desk
from tests.operators.test_commands import last, quiet


async def test_canned_replies_are_added_listed_replaced_and_removed(desk: Desk) -> None:
    await desk.say(OLGA, "/canned")
    assert last(desk, OLGA) == "No canned replies yet. Add one: /canned add name text"

    await desk.say(OLGA, "/canned add greet Hello! How can I help you today?")
    assert last(desk, OLGA) == "Saved !greet."
    await desk.say(OLGA, "/canned add bye Thank you,\nhave a nice day!")
    stored = await desk.store.canned.get("bye")
    assert stored.text == "Thank you,\nhave a nice day!" and stored.author_id == OLGA

    await desk.say(OLGA, "/canned")
    assert last(desk, OLGA) == (
        "Canned replies (write !name in a reply to use one):\n"
        "!bye — Thank you, have a nice day!\n"
        "!greet — Hello! How can I help you today?"
    )

    await desk.say(SAM, "/canned add greet Привет!")
    assert last(desk, SAM) == "Шаблон !greet создал(а) Olga; изменить его может только автор или супервизор."
    await desk.say(OLGA, "/canned add greet Hi! How can I help?")
    assert last(desk, OLGA) == "Replaced !greet."
    await desk.say(BOSS, "/canned add greet Hi there, how can we help?")
    assert last(desk, BOSS) == "Replaced !greet."
    greet = await desk.store.canned.get("greet")
    assert greet.text == "Hi there, how can we help?" and greet.author_id == OLGA

    await desk.say(SAM, "/canned remove greet")
    assert "Olga" in last(desk, SAM) and await desk.store.canned.get("greet") is not None
    await desk.say(OLGA, "/canned remove greet")
    assert last(desk, OLGA) == "Removed !greet."
    await desk.say(OLGA, "/canned remove greet")
    assert last(desk, OLGA) == "There is no canned reply !greet."
    await desk.say(BOSS, "/canned remove bye")  # a supervisor removes anyone's
    assert last(desk, BOSS) == "Removed !bye."
    assert await desk.store.canned.all() == []


async def test_bad_canned_commands_are_explained_and_save_nothing(desk: Desk) -> None:
    await desk.say(OLGA, "/canned add Greet Hello")
    assert last(desk, OLGA) == "“Greet” can't be a name: use 1–32 characters a–z, 0–9, _ and -."
    await desk.say(OLGA, f"/canned add {'x' * 33} Hello")
    assert "can't be a name" in last(desk, OLGA)
    await desk.say(OLGA, "/canned add greet")
    assert last(desk, OLGA) == "Usage: /canned, /canned add name text, /canned remove name"
    await desk.say(OLGA, "/canned rename greet hi")
    assert last(desk, OLGA) == "Usage: /canned, /canned add name text, /canned remove name"
    assert await desk.store.canned.all() == []


async def test_bang_names_expand_in_replies_and_unknown_names_send_nothing(desk: Desk) -> None:
    await desk.say(OLGA, "/canned add greet Hi there, how can we help?")
    await desk.say(OLGA, "/canned add sign-off Best regards,\nthe support team")
    await desk.online(OLGA)
    ann = await desk.visitor("hello?", "a-1")

    await desk.say(OLGA, "!greet I'm Olga.")
    assert (await ann.expect("message"))["text"] == "Hi there, how can we help? I'm Olga."
    await desk.say(OLGA, "Done!\n!sign-off")
    assert (await ann.expect("message"))["text"] == "Done!\nBest regards,\nthe support team"
    await desk.say(OLGA, "Great!!! wow!greet")  # not words of their own: sent as written
    assert (await ann.expect("message"))["text"] == "Great!!! wow!greet"
    stored = await desk.store.messages.collection.find({"direction": "out"}).sort("created_at", 1).to_list()
    assert stored[0]["text"] == "Hi there, how can we help? I'm Olga."

    copy = next(m for m in desk.chat(OLGA) if m.text and m.text.endswith("hello?"))
    await desk.say(OLGA, "!greet !nope and !nada", reply_to=copy.message_id)
    assert last(desk, OLGA) == "Unknown canned reply !nope, !nada. Nothing was sent; see /canned."
    assert await desk.store.messages.collection.count_documents({"direction": "out"}) == 3
    await quiet(ann, "a-2")
