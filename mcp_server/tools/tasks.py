"""Task tools: the user's to-do list, with due times and priorities."""

from datetime import datetime
from typing import Annotated, Literal
from zoneinfo import ZoneInfo

from mcp.server import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations
from pydantic import Field
from sqlalchemy import BindParameter, ColumnElement, Select, bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from mcp_server import models
from mcp_server.models import utcnow
from mcp_server.times import day_bounds, end_of_day, local_iso, parse_local_time
from mcp_server.tools.common import (
    Deleted,
    RowId,
    TimeText,
    ToolDeps,
    check_room,
    limit_param,
    owned_row,
    text_param,
)
from mcp_server.users import UserId
from shared.results import Priority, Task, TaskList, TaskStatus

PRIORITY_RANK: dict[str, int] = {"low": 0, "normal": 1, "high": 2}
PRIORITY_NAME = {rank: name for name, rank in PRIORITY_RANK.items()}
TaskFilter = Literal["open", "done", "overdue", "due_today", "all"]

DUE_DESCRIPTION = "Local ISO date-time, or a date for all day"


def task_view(task: models.Task, zone: ZoneInfo, now: datetime) -> Task:
    return Task(
        id=task.id,
        title=task.title,
        notes=task.notes,
        priority=PRIORITY_NAME[task.priority],
        status=task_status(task, now),
        due=task_due(task, zone),
        completed_at=local_iso(task.completed_at, zone) if task.completed_at else None,
    )


def task_due(task: models.Task, zone: ZoneInfo) -> str | None:
    if task.due_date is not None:
        return task.due_date.isoformat()
    return local_iso(task.due_at, zone) if task.due_at is not None else None


def task_status(task: models.Task, now: datetime) -> TaskStatus:
    if task.completed_at is not None:
        return "done"
    return "overdue" if task.due_at is not None and task.due_at < now else "open"


def search_text(title: str, notes: str | None) -> str:
    return f"{title}\n{notes or ''}".casefold()


def open_tasks_due(user_id: int | BindParameter[int], *conditions: ColumnElement[bool]) -> Select[tuple[models.Task]]:
    """The user's open tasks matching `conditions`, soonest due first, undated last."""
    return (
        select(models.Task)
        .where(models.Task.user_id == user_id, models.Task.completed_at.is_(None), *conditions)
        .order_by(models.Task.due_at.asc().nulls_last(), models.Task.priority.desc(), models.Task.id)
    )


async def realign_whole_day_tasks(session: AsyncSession, user_id: int, zone: ZoneInfo) -> None:
    """After a timezone change: a whole-day task still ends at midnight of its day, now in the new zone."""
    tasks = await session.scalars(
        select(models.Task).where(models.Task.user_id == user_id, models.Task.due_date.is_not(None))
    )
    for task in tasks:
        if task.due_date is not None:
            task.due_at = end_of_day(task.due_date, zone)


def task_list_queries() -> dict[TaskFilter, Select[tuple[models.Task]]]:
    """tasks_list's statement for each filter, with the user, the limit and the times as bound parameters."""
    task, user_id = models.Task, bindparam("user_id")
    queries = {
        "open": open_tasks_due(user_id),
        "overdue": open_tasks_due(user_id, task.due_at < bindparam("now")),
        "due_today": open_tasks_due(user_id, task.due_at > bindparam("start"), task.due_at <= bindparam("end")),
        "done": select(task)
        .where(task.user_id == user_id, task.completed_at.is_not(None))
        .order_by(task.completed_at.desc(), task.id.desc()),
        "all": select(task).where(task.user_id == user_id).order_by(task.completed_at.is_not(None), task.id),
    }
    return {show: query.limit(bindparam("limit")) for show, query in queries.items()}


def register(mcp: MCPServer, deps: ToolDeps) -> None:
    limits = deps.limits
    # Built once: on SQLite, building a statement and its cache key costs more than running it.
    list_queries = task_list_queries()
    title_type = text_param(limits.max_title_length)
    notes_type = text_param(limits.max_text_length, required=False)
    query_type = text_param(limits.max_query_length, "Only tasks with all these words")
    limit_type = limit_param(limits)

    @mcp.tool(title="Add a task")
    async def tasks_add(
        user_id: UserId,
        title: title_type,
        notes: notes_type | None = None,
        due: Annotated[TimeText | None, Field(description=DUE_DESCRIPTION)] = None,
        priority: Priority = "normal",
    ) -> Task:
        """Add a task to the user's to-do list."""
        async with deps.db.session() as session:
            zone = await deps.zone(session, user_id)
            await check_room(session, models.Task, user_id, limits)
            due_at, due_date = parse_local_time(due, zone) if due else (None, None)
            task = models.Task(
                user_id=user_id,
                title=title,
                notes=notes or None,
                priority=PRIORITY_RANK[priority],
                due_at=due_at,
                due_date=due_date,
                search_text=search_text(title, notes),
            )
            session.add(task)
            await session.flush()
            return task_view(task, zone, utcnow())

    @mcp.tool(title="List tasks", annotations=ToolAnnotations(read_only_hint=True))
    async def tasks_list(
        user_id: UserId,
        show: TaskFilter = "open",
        text: query_type | None = None,
        limit: limit_type = limits.list_default,
    ) -> TaskList:
        """List the user's tasks; open includes overdue."""
        now = utcnow()
        async with deps.db.session() as session:
            zone = await deps.zone(session, user_id)
            params: dict[str, object] = {"user_id": user_id, "limit": limit + 1, "now": now}
            if show == "due_today":
                params["start"], params["end"] = day_bounds(now, zone)
            query = list_queries[show]
            for word in (text or "").casefold().split():
                query = query.where(models.Task.search_text.contains(word, autoescape=True))
            rows = (await session.scalars(query, params)).all()
        return TaskList(
            tasks=[task_view(row, zone, now) for row in rows[:limit]], more=len(rows) > limit, timezone=zone.key
        )

    @mcp.tool(title="Complete a task", annotations=ToolAnnotations(idempotent_hint=True))
    async def tasks_complete(user_id: UserId, task_id: RowId) -> Task:
        """Mark a task as done."""
        async with deps.db.session() as session:
            zone = await deps.zone(session, user_id)
            task = await owned_row(session, models.Task, task_id, user_id)
            now = utcnow()
            task.completed_at = task.completed_at or now
            return task_view(task, zone, now)

    @mcp.tool(title="Change a task")
    async def tasks_update(
        user_id: UserId,
        task_id: RowId,
        title: title_type | None = None,
        notes: notes_type | None = None,
        due: Annotated[TimeText | None, Field(description=DUE_DESCRIPTION)] = None,
        clear_due: bool = False,
        priority: Priority | None = None,
        reopen: bool = False,
    ) -> Task:
        """Change or reopen a task; omitted fields stay, notes '' clears them."""
        if due and clear_due:
            raise ToolError("Give either due or clear_due, not both.")
        async with deps.db.session() as session:
            zone = await deps.zone(session, user_id)
            task = await owned_row(session, models.Task, task_id, user_id)
            if title is not None:
                task.title = title
            if notes is not None:
                task.notes = notes or None
            if due:
                task.due_at, task.due_date = parse_local_time(due, zone)
            if clear_due:
                task.due_at, task.due_date = None, None
            if priority is not None:
                task.priority = PRIORITY_RANK[priority]
            if reopen:
                task.completed_at = None
            task.search_text = search_text(task.title, task.notes)
            return task_view(task, zone, utcnow())

    @mcp.tool(title="Delete a task", annotations=ToolAnnotations(destructive_hint=True, idempotent_hint=False))
    async def tasks_delete(user_id: UserId, task_id: RowId) -> Deleted:
        """Delete a task for good; to finish one, complete it."""
        async with deps.db.session() as session:
            await session.delete(await owned_row(session, models.Task, task_id, user_id))
        return Deleted(id=task_id)
