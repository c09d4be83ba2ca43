"""Tool results as short plain-text messages, for the commands that answer without the model."""

from datetime import datetime
from typing import Any

from butler_bot.texts import Texts
from shared.results import Agenda, Reminder, Task, TaskList


def when(value: str | None) -> str:
    """'2025-11-25T18:00:00+03:00' reads as '2025-11-25 18:00'; a plain date stays as it is."""
    if not value:
        return ""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return value
    return value if len(value) == len("YYYY-MM-DD") else moment.strftime("%Y-%m-%d %H:%M")


def task_line(task: Task, texts: Texts) -> str:
    line = f"• {task.title}"
    if task.due:
        line += f" ({texts('due', when=when(task.due))})"
    if task.status == "overdue":
        line += f" ⚠️ {texts('overdue')}"
    if task.priority == "high":
        line += " ❗"
    return line


def reminder_line(reminder: Reminder) -> str:
    return f"• {when(reminder.due)[-5:]} {reminder.text}"


def tasks_view(data: dict[str, Any], texts: Texts) -> str:
    """tasks_list's structured result, checked against the shape the server builds it with."""
    task_list = TaskList.model_validate(data)
    if not task_list.tasks:
        return texts("tasks_empty")
    lines = [texts("tasks_header"), *(task_line(task, texts) for task in task_list.tasks)]
    if task_list.more:
        lines.append(texts("tasks_more"))
    return "\n".join(lines)


def agenda_view(data: dict[str, Any], texts: Texts) -> str:
    """agenda_today's structured result, checked against the shape the server builds it with."""
    agenda = Agenda.model_validate(data)
    lines = [texts("today_header", now=when(agenda.now), timezone=agenda.timezone)]
    sections = [
        ("today_overdue", [task_line(task, texts) for task in agenda.overdue_tasks]),
        ("today_due", [task_line(task, texts) for task in agenda.due_today]),
        ("today_reminders", [reminder_line(reminder) for reminder in agenda.reminders]),
    ]
    for title, items in sections:
        if items:
            lines += ["", texts(title), *items]
    if len(lines) == 1:
        lines.append(texts("today_empty"))
    if agenda.more:
        lines += ["", texts("tasks_more")]
    return "\n".join(lines)


def tools_view(tools: list[Any], texts: Texts) -> str:
    lines = [texts("tools_header")]
    for tool in sorted(tools, key=lambda tool: tool.name):
        summary = (tool.description or tool.title or "").strip().splitlines()
        lines.append(f"• {tool.name}: {summary[0]}" if summary else f"• {tool.name}")
    return "\n".join(lines)
