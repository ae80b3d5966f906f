"""An embedded MongoDB-compatible server: the MongoDB wire protocol over SQLite storage.

    async with EmbeddedMongo("data") as server:
        client = AsyncMongoClient(server.uri)

Run it alone with `python -m embedded_mongo --port P --data-dir D`.
"""

from .backup import backup
from .datadir import DataDirectoryInUseError
from .oplog import History
from .server import EmbeddedMongo, serve

__all__ = ["DataDirectoryInUseError", "EmbeddedMongo", "History", "backup", "serve"]
