"""What every durable store has in common: settings, open (creating its schema), close,
and a ping for /readyz. The SQL stores delegate all three to one shared adapter
(`SqliteDb` or `PostgresDb`), which owns the connection handling. Each adapter is
imported by the store that uses it: a service on SQLite never loads asyncpg (~2 MB)."""

from __future__ import annotations

import abc
from typing import TYPE_CHECKING

from services.common.settings import StoreSettings

if TYPE_CHECKING:
    from services.common.stores.postgres_db import PostgresDb
    from services.common.stores.sqlite_db import SqliteDb


class Store(abc.ABC):
    def __init__(self, settings: StoreSettings) -> None:
        self.settings = settings

    @abc.abstractmethod
    async def open(self) -> None: ...

    @abc.abstractmethod
    async def close(self) -> None: ...

    @abc.abstractmethod
    async def ping(self) -> None: ...


class SqliteBacked(Store):
    """A store on one SQLite file (WAL, shared by the processes of one machine)."""

    schema: str

    db: SqliteDb

    def __init__(self, settings: StoreSettings) -> None:
        from services.common.stores.sqlite_db import SqliteDb

        super().__init__(settings)
        self.db = SqliteDb(settings.url, self.schema)

    async def open(self) -> None:
        await self.db.open()

    async def close(self) -> None:
        await self.db.close()

    async def ping(self) -> None:
        await self.db.ping()


class PostgresBacked(Store):
    """A store on a PostgreSQL pool, shared by several replicas."""

    schema: str

    db: PostgresDb

    def __init__(self, settings: StoreSettings) -> None:
        from services.common.stores.postgres_db import PostgresDb

        super().__init__(settings)
        self.db = PostgresDb(settings.url, self.schema, pool_size=settings.pool_size)

    async def open(self) -> None:
        await self.db.open()

    async def close(self) -> None:
        await self.db.close()

    async def ping(self) -> None:
        await self.db.ping()
