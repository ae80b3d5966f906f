"""Bot API errors with the exact wording of the official server (tdlib/telegram-bot-api)."""

from __future__ import annotations

from typing import Any, Final

UNAUTHORIZED: Final = "Unauthorized"
NOT_FOUND: Final = "Not Found"
METHOD_NOT_FOUND: Final = "Not Found: method not found"

CHAT_NOT_FOUND: Final = "Bad Request: chat not found"
CHAT_ID_EMPTY: Final = "Bad Request: chat_id is empty"
TEXT_EMPTY: Final = "Bad Request: message text is empty"
TEXT_TOO_LONG: Final = "Bad Request: message is too long"
CAPTION_TOO_LONG: Final = "Bad Request: message caption is too long"
REPLY_NOT_FOUND: Final = "Bad Request: message to be replied not found"
THREAD_NOT_FOUND: Final = "Bad Request: message thread not found"
BUTTON_DATA_INVALID: Final = "Bad Request: BUTTON_DATA_INVALID"
QUOTE_INVALID: Final = "Bad Request: QUOTE_TEXT_INVALID"
FILE_ID_INVALID: Final = "Bad Request: wrong file identifier/HTTP URL specified"
FILE_EMPTY: Final = "Bad Request: file must be non-empty"
GET_FILE_INVALID: Final = "Bad Request: wrong file_id or the file is temporarily unavailable"
FILE_TOO_BIG: Final = "Bad Request: file is too big"
UPLOAD_TOO_BIG: Final = "Request Entity Too Large"
MESSAGE_TO_EDIT_NOT_FOUND: Final = "Bad Request: message to edit not found"
MESSAGE_CANT_BE_EDITED: Final = "Bad Request: message can't be edited"
NO_TEXT_TO_EDIT: Final = "Bad Request: there is no text in the message to edit"
NO_CAPTION_TO_EDIT: Final = "Bad Request: there is no caption in the message to edit"
NOT_MODIFIED: Final = (
    "Bad Request: message is not modified: specified new message content and reply markup are"
    " exactly the same as a current content and reply markup of the message"
)
REACTION_INVALID: Final = "Bad Request: REACTION_INVALID"
REACTIONS_TOO_MANY: Final = "Bad Request: REACTIONS_TOO_MANY"
MESSAGE_ID_INVALID: Final = "Bad Request: MESSAGE_ID_INVALID"
MESSAGE_TO_DELETE_NOT_FOUND: Final = "Bad Request: message to delete not found"
MESSAGE_TO_COPY_NOT_FOUND: Final = "Bad Request: message to copy not found"
MESSAGE_TO_FORWARD_NOT_FOUND: Final = "Bad Request: message to forward not found"
MESSAGE_CANT_BE_COPIED: Final = "Bad Request: the message can't be copied"
QUERY_INVALID: Final = "Bad Request: query is too old and response timeout expired or query ID is invalid"
CHAT_ACTION_INVALID: Final = "Bad Request: wrong parameter action in request"
NOT_A_FORUM: Final = "Bad Request: the chat is not a forum"
TOPIC_ID_INVALID: Final = "Bad Request: TOPIC_ID_INVALID"
TOPIC_NOT_MODIFIED: Final = "Bad Request: TOPIC_NOT_MODIFIED"
COMMAND_INVALID: Final = "Bad Request: BOT_COMMAND_INVALID"
COMMANDS_TOO_MUCH: Final = "Bad Request: BOT_COMMANDS_TOO_MUCH"
COMMAND_DESCRIPTION_EMPTY: Final = "Bad Request: command description must be non-empty"
WEBHOOK_URL_INVALID: Final = "Bad Request: invalid webhook URL specified"
SECRET_TOO_LONG: Final = "Bad Request: secret token is too long"
SECRET_INVALID: Final = "Bad Request: secret token contains illegal characters"
WEBHOOK_ACTIVE: Final = (
    "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first"
)
TERMINATED_BY_POLL: Final = (
    "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running"
)
TERMINATED_BY_WEBHOOK: Final = "Conflict: terminated by setWebhook request"
BOT_BLOCKED: Final = "Forbidden: bot was blocked by the user"

DEFAULT_DESCRIPTIONS: Final = {
    400: "Bad Request",
    401: UNAUTHORIZED,
    403: BOT_BLOCKED,
    404: NOT_FOUND,
    409: "Conflict",
    413: UPLOAD_TOO_BIG,
    500: "Internal Server Error",
}


def required(name: str) -> str:
    """Description of a missing required parameter."""
    return f'Bad Request: parameter "{name}" is required'


def retry_after(seconds: int) -> str:
    """Description of a flood-control error (`Query::set_retry_after_error`)."""
    return f"Too Many Requests: retry after {seconds}"


class ApiError(Exception):
    """A Bot API failure; rendered as `{"ok":false,"error_code":…,"description":…}` with HTTP status = code."""

    def __init__(self, error_code: int, description: str, parameters: dict[str, Any] | None = None) -> None:
        super().__init__(f"{error_code} {description}")
        self.error_code = error_code
        self.description = description
        self.parameters = parameters

    @classmethod
    def bad_request(cls, description: str) -> ApiError:
        """A 400 error."""
        return cls(400, description)

    def body(self) -> dict[str, Any]:
        """The error envelope, keys in the real server's order."""
        body: dict[str, Any] = {"ok": False, "error_code": self.error_code, "description": self.description}
        if self.parameters:
            body["parameters"] = dict(self.parameters)
        return body
