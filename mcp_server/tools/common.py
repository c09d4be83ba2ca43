"""What every tool module uses: the database, the limits, parameter types and the per-user row checks."""

from dataclasses import dataclass
from typing import Annotated, Any, TypeVar
from zoneinfo import ZoneInfo

from mcp.server.mcpserver.exceptions import ToolError
from pydantic import AfterValidator, BaseModel, Field, StringConstraints
from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from mcp_server.db import Database
from mcp_server.models import Note, Reminder, Task
from mcp_server.settings import ToolLimits
from mcp_server.users import UserTimezones

# The largest id a row can have (32-bit on PostgreSQL); a larger one names no row.
MAX_ROW_ID = 2**31 - 1

RowT = TypeVar("RowT", Task, Note, Reminder)


@dataclass(frozen=True)
class ToolDeps:
    db: Database
    limits: ToolLimits
    timezones: UserTimezones

    async def zone(self, session: AsyncSession, user_id: int) -> ZoneInfo:
        return await self.timezones.get(session, user_id)


class Deleted(BaseModel):
    id: int = Field(description="Id of the deleted row; it is gone for good")
    deleted: bool = True


def _no_nul(value: str) -> str:
    # PostgreSQL text cannot hold NUL; refuse it on every backend alike.
    if "\x00" in value:
        raise ValueError("text must not contain NUL characters")
    return value


def text_param(max_length: int, description: str | None = None, *, required: bool = True) -> Any:
    """A text parameter: trimmed, non-empty when required, at most `max_length` characters."""
    return Annotated[
        str,
        StringConstraints(strip_whitespace=True, min_length=1 if required else 0, max_length=max_length),
        AfterValidator(_no_nul),
        Field(description=description),
    ]


RowId = Annotated[int, Field(ge=1, le=MAX_ROW_ID)]


def limit_param(limits: ToolLimits) -> Any:
    return Annotated[int, Field(ge=1, le=limits.list_max)]


# Due and reminder times: the parser gives the error an LLM can act on, so the schema only bounds the size.
TimeText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=40)]


# Where the LLM finds the right id when it named a wrong one.
FINDER_TOOL = {Task: "tasks_list", Note: "notes_search", Reminder: "reminders_list"}


async def owned_row(session: AsyncSession, model: type[RowT], row_id: int, user_id: int) -> RowT:
    """The user's row with that id; another user's row is as missing as one that never existed."""
    row = await session.scalar(select(model).where(model.id == row_id, model.user_id == user_id))
    if row is None:
        what = model.__tablename__.removesuffix("s")
        raise ToolError(f"No {what} with id {row_id} for this user: call {FINDER_TOOL[model]} to find the right id.")
    return row


async def check_room(
    session: AsyncSession, model: type[RowT], user_id: int, limits: ToolLimits, *conditions: ColumnElement[bool]
) -> None:
    """Refuse a new row once the user has `max_items_per_user` of them (matching `conditions`)."""
    count = await session.scalar(select(func.count()).where(model.user_id == user_id, *conditions))
    if (count or 0) >= limits.max_items_per_user:
        table = model.__tablename__
        raise ToolError(f"This user already has {limits.max_items_per_user} {table}, the limit: delete some first.")
