"""The agenda tool: one call that answers "what is on today?", and sets the daily briefing that sends it."""

from mcp.server import MCPServer
from mcp.types import ToolAnnotations

from mcp_server import models
from mcp_server.models import utcnow
from mcp_server.times import day_bounds, local_iso
from mcp_server.tools.briefing import briefing_time, not_a_briefing, set_briefing
from mcp_server.tools.common import TimeText, ToolDeps
from mcp_server.tools.reminders import pending_reminders, reminder_view
from mcp_server.tools.tasks import open_tasks_due, task_view
from mcp_server.users import UserId
from shared.results import Agenda


def register(mcp: MCPServer, deps: ToolDeps) -> None:
    limit = deps.limits.list_default

    # Not read-only: daily_at changes the briefing; the same call twice leaves it the same.
    @mcp.tool(title="Today's agenda", annotations=ToolAnnotations(idempotent_hint=True))
    async def agenda_today(user_id: UserId, daily_at: TimeText | None = None) -> Agenda:
        """Today's agenda: overdue and due tasks, pending reminders. daily_at 'HH:MM' sends it daily; 'off' stops."""
        now = utcnow()
        task = models.Task
        async with deps.db.session() as session:
            zone = await deps.zone(session, user_id)
            if daily_at is not None:
                await set_briefing(session, user_id, daily_at, zone)
            _, end_of_today = day_bounds(now, zone)
            overdue = (await session.scalars(open_tasks_due(user_id, task.due_at < now).limit(limit + 1))).all()
            due_today = await session.scalars(
                open_tasks_due(user_id, task.due_at >= now, task.due_at <= end_of_today).limit(limit + 1)
            )
            reminders = await session.scalars(
                pending_reminders(user_id)
                .where(models.Reminder.due_at <= end_of_today, not_a_briefing(user_id))
                .limit(limit + 1)
            )
            due_today_rows, reminder_rows = due_today.all(), reminders.all()
            daily = await briefing_time(session, user_id)
        return Agenda(
            now=local_iso(now, zone),
            timezone=zone.key,
            overdue_tasks=[task_view(row, zone, now) for row in overdue[:limit]],
            due_today=[task_view(row, zone, now) for row in due_today_rows[:limit]],
            reminders=[reminder_view(row, zone) for row in reminder_rows[:limit]],
            more=max(len(overdue), len(due_today_rows), len(reminder_rows)) > limit,
            daily_at=daily,
        )
