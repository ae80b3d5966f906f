"""Texts of duplicate-customer offers and merges."""

TEXTS: dict[str, dict[str, str]] = {
    "en": {
        "dup.offer.title": "🔁 #{number} · {name} may be the same person as:",
        "dup.offer.card": "👤 {name} · {channel}",
        "dup.offer.last": "🗂 Last conversation: #{number} · {when} · {status}",
        "dup.offer.no_conversation": "🗂 No conversations yet",
        "dup.offer.why": "🔎 Why: {reason}",
        "dup.offer.keeps": "Merge keeps the older card, {card}.",
        "dup.why.phone": "same phone {value}",
        "dup.why.email": "same e-mail {value}",
        "dup.why.verified": "{match} (verified on both)",
        "dup.why.names": "names {percent}% alike",
        "dup.button.merge": "🔗 Merge",
        "dup.button.keep": "🔗 Merge, keep {card}",
        "dup.button.dismiss": "🚫 Not the same person",
        "dup.list.title": "Possible duplicates, strongest first: {count}",
        "dup.list.empty": "There are no open duplicates.",
        "dup.list.more": "Only the strongest {count} are shown.",
        "dup.merged": "✅ Merged (merge #{merge}): {other} is now part of {kept}. A supervisor can undo it with "
                      "/unmerge {merge}.",
        "dup.already_merged": "Already merged: both are {name} now. Nothing changed.",
        "dup.same_card": "That is the same card; nothing to merge.",
        "dup.same_threads": "#{first} and #{second} are already one customer. Nothing changed.",
        "dup.not_allowed": "Only a supervisor or the operator of one of these conversations can decide this. "
                           "Nothing changed.",
        "dup.busy": "These customers are being merged right now. Nothing changed; try again in a moment.",
        "dup.unknown": "That customer card or duplicate no longer exists. Nothing changed.",
        "dup.dismissed": "Noted: not the same person. This pair will not be offered again.",
        "dup.decided.dismissed": "Already decided: not the same person. Nothing changed; /merge can still merge "
                                 "them.",
        "dup.decided.merged": "Already decided: these customers were merged. Nothing changed.",
        "dup.decided.moved": "Already decided: one of these cards was merged into another one. Nothing changed.",
        "dup.merge.usage": "Usage: /merge 17 21 merges the customers of #17 and #21 and keeps the older card; "
                           "/merge 17 21 21 keeps the card of #21.",
        "dup.merge.bad_keep": "#{keep} is not one of #{first} and #{second}. Nothing changed.",
        "dup.unmerge.usage": "Usage: /unmerge 3, with the merge number from the merge message.",
        "dup.unmerge.unknown": "There is no merge #{merge}.",
        "dup.unmerge.done": "✅ Merge #{merge} undone: {restored} and {kept} are separate customers again.",
        "dup.unmerge.already": "Merge #{merge} was already undone. Nothing changed.",
        "dup.unmerge.busy": "Merge #{merge} is in progress. Nothing changed; try again in a moment.",
        "dup.unmerge.not_undoable": "{name} has since been merged into another card: undo that merge first. "
                                    "Nothing changed.",
        "dup.unmerge.not_allowed": "Only a supervisor can undo a merge. Nothing changed.",
        "dup.joined": "🔗 Your conversation #{closed} was joined into #{kept}: the customers were merged "
                      "(merge #{merge}). {name} has it now.",
        "dup.joined_queued": "🔗 Your conversation #{closed} was joined into #{kept}: the customers were merged "
                             "(merge #{merge}). It waits in the queue.",
        "dup.merged_in": "🔗 #{number}: {other} was merged into this customer (merge #{merge}).",
        "dup.merged_in_joined": "Their conversation #{closed} was joined into this one.",
        "dup.unmerged": "↩️ Merge #{merge} was undone: {restored} and {kept} are separate customers again.",
    },
    "ru": {
        "dup.offer.title": "🔁 #{number} · {name} — возможно, тот же человек, что и:",
        "dup.offer.card": "👤 {name} · {channel}",
        "dup.offer.last": "🗂 Последний диалог: #{number} · {when} · {status}",
        "dup.offer.no_conversation": "🗂 Диалогов ещё не было",
        "dup.offer.why": "🔎 Почему: {reason}",
        "dup.offer.keeps": "При объединении остаётся более старая карточка, {card}.",
        "dup.why.phone": "тот же телефон {value}",
        "dup.why.email": "тот же e-mail {value}",
        "dup.why.verified": "{match} (подтверждён у обоих)",
        "dup.why.names": "имена похожи на {percent}%",
        "dup.button.merge": "🔗 Объединить",
        "dup.button.keep": "🔗 Объединить, оставить {card}",
        "dup.button.dismiss": "🚫 Это разные люди",
        "dup.list.title": "Возможные дубликаты, самые вероятные первыми: {count}",
        "dup.list.empty": "Открытых дубликатов нет.",
        "dup.list.more": "Показаны только {count} самых вероятных.",
        "dup.merged": "✅ Объединено (объединение #{merge}): {other} теперь часть карточки {kept}. Супервизор "
                      "может отменить это командой /unmerge {merge}.",
        "dup.already_merged": "Уже объединены: оба теперь {name}. Ничего не изменено.",
        "dup.same_card": "Это одна и та же карточка, объединять нечего.",
        "dup.same_threads": "#{first} и #{second} — уже один клиент. Ничего не изменено.",
        "dup.not_allowed": "Решить это может только супервизор или оператор одного из этих диалогов. "
                           "Ничего не изменено.",
        "dup.busy": "Эти клиенты прямо сейчас объединяются. Ничего не изменено; повторите чуть позже.",
        "dup.unknown": "Этой карточки или этого дубликата больше нет. Ничего не изменено.",
        "dup.dismissed": "Принято: это разные люди. Эта пара больше не будет предлагаться.",
        "dup.decided.dismissed": "Уже решено: это разные люди. Ничего не изменено; объединить их всё же можно "
                                 "командой /merge.",
        "dup.decided.merged": "Уже решено: эти клиенты объединены. Ничего не изменено.",
        "dup.decided.moved": "Уже решено: одна из карточек объединена с другой. Ничего не изменено.",
        "dup.merge.usage": "Формат: /merge 17 21 объединяет клиентов #17 и #21 и оставляет более старую "
                           "карточку; /merge 17 21 21 оставляет карточку #21.",
        "dup.merge.bad_keep": "#{keep} — не #{first} и не #{second}. Ничего не изменено.",
        "dup.unmerge.usage": "Формат: /unmerge 3, где 3 — номер объединения из сообщения о нём.",
        "dup.unmerge.unknown": "Объединения #{merge} нет.",
        "dup.unmerge.done": "✅ Объединение #{merge} отменено: {restored} и {kept} снова разные клиенты.",
        "dup.unmerge.already": "Объединение #{merge} уже отменено. Ничего не изменено.",
        "dup.unmerge.busy": "Объединение #{merge} ещё выполняется. Ничего не изменено; повторите чуть позже.",
        "dup.unmerge.not_undoable": "{name} с тех пор объединён(а) с другой карточкой: сначала отмените то "
                                    "объединение. Ничего не изменено.",
        "dup.unmerge.not_allowed": "Отменить объединение может только супервизор. Ничего не изменено.",
        "dup.joined": "🔗 Ваш диалог #{closed} присоединён к #{kept}: клиенты объединены (объединение #{merge}). "
                      "Теперь его ведёт {name}.",
        "dup.joined_queued": "🔗 Ваш диалог #{closed} присоединён к #{kept}: клиенты объединены "
                             "(объединение #{merge}). Он ждёт в очереди.",
        "dup.merged_in": "🔗 #{number}: {other} — объединено с этим клиентом (объединение #{merge}).",
        "dup.merged_in_joined": "Его диалог #{closed} присоединён к этому.",
        "dup.unmerged": "↩️ Объединение #{merge} отменено: {restored} и {kept} снова разные клиенты.",
    },
}
