"""Texts of /export and /forget: a customer's data on request."""

TEXTS: dict[str, dict[str, str]] = {
    "en": {
        "cmd.export": "Everything stored about a customer, as a file",
        "cmd.forget": "Erase everything stored about a customer",
        "privacy.unknown": "Nothing is stored about the customer of #{number} any more: they were erased.",
        "privacy.export.caption": "#{number}: everything stored about this customer ({threads} conversations, "
        "{messages} messages). The file holds personal data: delete it once the request is answered.",
        "privacy.export.too_big": "#{number}: the export is {size} MB, more than Telegram takes from a bot. "
        "Get it from the API: GET /api/v1/contacts/{contact}/export",
        "privacy.forget.confirm": "Erase everything stored about the customer of #{number}? That is their "
        "card{merged}, {threads} conversations with {messages} messages, notes, visitor data and files.\n"
        "It cannot be undone. The conversations are kept only as timings for the statistics, and a new message "
        "from them starts a new card.",
        "privacy.forget.merged": " (and {count} cards merged into it)",
        "privacy.button.erase": "🗑 Erase",
        "privacy.button.cancel": "Cancel",
        "privacy.forget.cancelled": "Cancelled: nothing was erased.",
        "privacy.forget.done": "🗑 Erased the customer of #{number}: {cards} cards and {messages} messages deleted, "
        "{threads} conversations kept as timings only.",
        "privacy.forget.already": "The customer of #{number} was erased already. Nothing changed.",
        "privacy.forget.busy": "This customer is being merged right now. Nothing was erased; try again in a moment.",
        "privacy.forget.gone": "This customer no longer exists. Nothing changed.",
        "privacy.leftovers": "Not deleted, because the gateway cannot reach it:",
        "privacy.place.telegram": "• {count} messages in the customer's own Telegram chat with the bot (only they "
        "can delete them)",
        "privacy.place.whatsapp": "• {count} messages on the customer's WhatsApp, and in Twilio's message log (delete "
        "them in the Twilio console)",
        "privacy.place.webwidget": "• the visitor token in the customer's browser (it opens no history any more)",
        "privacy.place.operator_chats": "• {count} copies in operators' chats that Telegram no longer lets the bot "
        "delete (older than 48 hours, or refused)",
        "privacy.place.forum_mirror": "• {count} topics of the supervisors' forum that Telegram did not let the bot "
        "delete",
        "privacy.place.database_history": "• the database's change history and backups, until they roll over",
        "moved.erased": "#{number} was closed: the customer's data was erased at their request.",
    },
    "ru": {
        "cmd.export": "Все данные клиента одним файлом",
        "cmd.forget": "Удалить все данные клиента",
        "privacy.unknown": "О клиенте диалога #{number} больше ничего не хранится: его данные удалены.",
        "privacy.export.caption": "#{number}: все данные этого клиента (диалогов: {threads}, сообщений: {messages}). "
        "В файле персональные данные: удалите его, когда ответите на запрос.",
        "privacy.export.too_big": "#{number}: выгрузка занимает {size} МБ — больше, чем Telegram принимает от бота. "
        "Получите её через API: GET /api/v1/contacts/{contact}/export",
        "privacy.forget.confirm": "Удалить все данные клиента диалога #{number}? Это его карточка{merged}, "
        "диалоги ({threads}) с сообщениями ({messages}), заметки, данные посетителя и файлы.\n"
        "Отменить это нельзя. Диалоги останутся только как время для статистики, а новое сообщение клиента "
        "начнёт новую карточку.",
        "privacy.forget.merged": " (и объединённые с ней карточки: {count})",
        "privacy.button.erase": "🗑 Удалить",
        "privacy.button.cancel": "Отмена",
        "privacy.forget.cancelled": "Отменено: ничего не удалено.",
        "privacy.forget.done": "🗑 Данные клиента диалога #{number} удалены: карточек — {cards}, сообщений — "
        "{messages}; диалогов осталось только как время — {threads}.",
        "privacy.forget.already": "Данные клиента диалога #{number} уже удалены. Ничего не изменилось.",
        "privacy.forget.busy": "Этого клиента сейчас объединяют с другим. Ничего не удалено; попробуйте чуть позже.",
        "privacy.forget.gone": "Этого клиента больше нет. Ничего не изменилось.",
        "privacy.leftovers": "Не удалено — до этого шлюз не может дотянуться:",
        "privacy.place.telegram": "• сообщения в чате клиента с ботом в Telegram ({count}; удалить их может только "
        "он сам)",
        "privacy.place.whatsapp": "• сообщения в WhatsApp клиента и в журнале сообщений Twilio ({count}; удалите их "
        "в консоли Twilio)",
        "privacy.place.webwidget": "• токен посетителя в браузере клиента (история по нему больше не открывается)",
        "privacy.place.operator_chats": "• копии в чатах операторов, которые Telegram уже не даёт боту удалить "
        "({count}; старше 48 часов или отказ)",
        "privacy.place.forum_mirror": "• темы форума супервизоров, которые Telegram не дал боту удалить ({count})",
        "privacy.place.database_history": "• история изменений базы данных и резервные копии — пока не обновятся",
        "moved.erased": "#{number} закрыт: данные клиента удалены по его просьбе.",
    },
}
