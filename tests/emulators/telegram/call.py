"""One Bot API invocation as the method implementations see it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from . import errors as e
from .errors import ApiError
from .records import UploadedFile
from .world import BotState


@dataclass
class Call:
    """One method invocation with its decoded parameters."""

    bot: BotState
    method: str
    params: dict[str, Any]
    files: dict[str, UploadedFile]
    parts: dict[str, UploadedFile]

    def get(self, name: str, default: Any = None) -> Any:
        """A parameter, or `default` when absent or empty."""
        value = self.params.get(name)
        return default if value is None or value == "" else value

    def require(self, name: str) -> Any:
        """A required parameter; 400 `parameter "x" is required` when missing."""
        value = self.get(name)
        if value is None:
            raise ApiError.bad_request(e.required(name))
        return value

    def flag(self, name: str) -> bool:
        """A boolean parameter (absent = false)."""
        return bool(self.params.get(name))


@dataclass(frozen=True)
class Described:
    """A result that carries the optional envelope `description` (setWebhook/deleteWebhook)."""

    result: Any
    description: str


def files_by_param(params: dict[str, Any], parts: dict[str, UploadedFile]) -> dict[str, UploadedFile]:
    """Uploaded parts keyed by the parameter that references them (`photo=attach://x` → "photo")."""
    files: dict[str, UploadedFile] = {}
    used: set[str] = set()
    for name, value in params.items():
        if isinstance(value, str) and value.startswith("attach://") and value[9:] in parts:
            files[name] = parts[value[9:]]
            used.add(value[9:])
    files.update({name: part for name, part in parts.items() if name not in used})
    return files
