"""An embedded MongoDB-compatible server: the MongoDB wire protocol over SQLite storage.

    async with EmbeddedMongo("data") as server:
        client = AsyncMongoClient(server.uri)

Run it alone with `python -m embedded_mongo --port P --data-dir D`, or as a child process with EngineProcess.
"""

from .backup import backup
from .datadir import DataDirectoryInUseError
from .oplog import History
from .process import EngineProcess, EngineStartError
from .server import EmbeddedMongo, serve

__all__ = [
    "DataDirectoryInUseError",
    "EmbeddedMongo",
    "EngineProcess",
    "EngineStartError",
    "History",
    "backup",
    "serve",
]
