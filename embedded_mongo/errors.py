"""Command errors carrying MongoDB error codes, and translation of mongomock's exceptions."""

from __future__ import annotations

from typing import Any

import bson
import mongomock

CODE_NAMES = {
    1: "InternalError",
    2: "BadValue",
    4: "NoSuchKey",
    9: "FailedToParse",
    11: "UserNotFound",
    14: "TypeMismatch",
    20: "IllegalOperation",
    26: "NamespaceNotFound",
    27: "IndexNotFound",
    28: "PathNotViable",
    40: "ConflictingUpdateOperators",
    43: "CursorNotFound",
    48: "NamespaceExists",
    52: "DollarPrefixedFieldName",
    53: "InvalidIdField",
    56: "EmptyFieldName",
    59: "CommandNotFound",
    66: "ImmutableField",
    67: "CannotCreateIndex",
    72: "InvalidOptions",
    73: "InvalidNamespace",
    85: "IndexOptionsConflict",
    86: "IndexKeySpecsConflict",
    96: "OperationFailed",
    115: "CommandNotSupported",
    171: "CannotIndexParallelArrays",
    175: "QueryPlanKilled",
    17419: "BSONObjectTooLarge",
    40323: "Location40323",
    197: "InvalidIndexSpecificationOption",
    225: "TransactionTooOld",
    238: "NotImplemented",
    251: "NoSuchTransaction",
    260: "InvalidResumeToken",
    280: "ChangeStreamFatalError",
    286: "ChangeStreamHistoryLost",
    14031: "OutOfDiskSpace",
    40324: "Location40324",
    40415: "Location40415",
    40602: "Location40602",
    11000: "DuplicateKey",
}


class CommandError(Exception):
    """A command failure reported to the client as {ok: 0, errmsg, code, codeName}."""

    def __init__(self, code: int, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.extra = extra

    def to_reply(self) -> dict[str, Any]:
        """The error as a command reply document."""
        reply: dict[str, Any] = {"ok": 0.0, "errmsg": self.message, "code": self.code}
        reply["codeName"] = CODE_NAMES.get(self.code, "UnknownError")
        reply.update(self.extra)
        return reply

    def to_write_error(self, index: int) -> dict[str, Any]:
        """The error as one entry of a write command's writeErrors."""
        entry: dict[str, Any] = {"index": index, "code": self.code, "errmsg": self.message}
        entry.update(self.extra)
        return entry


def translate(exc: Exception) -> CommandError:
    """Turn an exception raised while evaluating a query or update into a CommandError."""
    if isinstance(exc, CommandError):
        return exc
    if isinstance(exc, mongomock.OperationFailure):
        code = exc.code if isinstance(exc.code, int) and exc.code else 2
        return CommandError(code, str(exc) or "bad value")
    if isinstance(exc, NotImplementedError):
        return CommandError(238, f"not supported by the embedded engine: {exc}")
    if isinstance(exc, (ValueError, TypeError, KeyError, IndexError, AttributeError)):
        return CommandError(2, f"{type(exc).__name__}: {exc}")
    return CommandError(1, f"internal error: {type(exc).__name__}: {exc}")


# What evaluating one statement of a write can raise that is the statement's fault (storage errors
# are not among them: they fail the whole batch).
STATEMENT_ERRORS: tuple[type[Exception], ...] = (
    CommandError,
    mongomock.OperationFailure,
    NotImplementedError,
    ValueError,
    TypeError,
    KeyError,
    IndexError,
    AttributeError,
    ArithmeticError,
    RecursionError,
    bson.errors.BSONError,
)
