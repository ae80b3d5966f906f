"""The process's one HTTP client session: every bot and download shares its connection pool."""

from __future__ import annotations

from aiohttp import ClientSession, ClientTimeout

# Each request sets its own timeout; this only bounds a request that forgot to.
DEFAULT_TIMEOUT = ClientTimeout(total=120, sock_connect=10)


class HttpClient:
    """Holds the shared aiohttp ClientSession, opened and closed with the app (it needs a running loop)."""

    def __init__(self) -> None:
        self._session: ClientSession | None = None

    @property
    def session(self) -> ClientSession:
        """The open session; using it before the app started is a programming error."""
        if self._session is None or self._session.closed:
            raise RuntimeError("the HTTP client is not open")
        return self._session

    async def open(self) -> None:
        """Create the session (idempotent)."""
        if self._session is None or self._session.closed:
            self._session = ClientSession(timeout=DEFAULT_TIMEOUT)

    async def close(self) -> None:
        """Close the session and its connections."""
        if self._session is not None:
            await self._session.close()
            self._session = None
