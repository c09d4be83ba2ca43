"""Alembic environment: the app passes its open connection; the alembic CLI connects with DATABASE_URL.

New revision (from the repository root, with DATABASE_URL naming a database at head):
    .venv/bin/alembic -c mcp_server/alembic.ini revision --autogenerate -m "what changed"
"""

import asyncio

from alembic import context
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from mcp_server.models import Base


def run_migrations(connection: Connection) -> None:
    # render_as_batch: SQLite alters a table by copying it, which Alembic does only in batch mode.
    context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


async def run_from_cli() -> None:
    from mcp_server.settings import McpServerSettings
    from shared.settings import load_settings

    url = load_settings(McpServerSettings, "alembic").database_url.get_secret_value()
    engine = create_async_engine(url)
    async with engine.begin() as connection:
        await connection.run_sync(run_migrations)
    await engine.dispose()


if (connection := context.config.attributes.get("connection")) is not None:
    run_migrations(connection)
else:
    asyncio.run(run_from_cli())
