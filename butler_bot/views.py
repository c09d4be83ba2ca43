"""Tool results as short plain-text messages, for the commands that answer without the model."""

from datetime import datetime
from typing import Any

from butler_bot.texts import Texts


def when(value: str | None) -> str:
    """'2025-11-25T18:00:00+03:00' reads as '2025-11-25 18:00'; a plain date stays as it is."""
    if not value:
        return ""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return value
    return value if len(value) == len("YYYY-MM-DD") else moment.strftime("%Y-%m-%d %H:%M")


def task_line(task: dict[str, Any], texts: Texts) -> str:
    line = f"• {task.get('title', '?')}"
    if task.get("due"):
        line += f" ({texts('due', when=when(task['due']))})"
    if task.get("overdue"):
        line += f" ⚠️ {texts('overdue')}"
    if task.get("priority") == "high":
        line += " ❗"
    return line


def reminder_line(reminder: dict[str, Any]) -> str:
    return f"• {when(reminder.get('due'))[-5:]} {reminder.get('text', '?')}"


def tasks_view(data: dict[str, Any], texts: Texts) -> str:
    tasks = data.get("tasks") or []
    if not tasks:
        return texts("tasks_empty")
    lines = [texts("tasks_header"), *(task_line(task, texts) for task in tasks)]
    if data.get("more"):
        lines.append(texts("tasks_more"))
    return "\n".join(lines)


def agenda_view(data: dict[str, Any], texts: Texts) -> str:
    lines = [texts("today_header", now=when(data.get("now")), timezone=data.get("timezone", "UTC"))]
    sections = [
        ("today_overdue", [task_line(task, texts) for task in data.get("overdue_tasks") or []]),
        ("today_due", [task_line(task, texts) for task in data.get("due_today") or []]),
        ("today_reminders", [reminder_line(reminder) for reminder in data.get("reminders") or []]),
    ]
    for title, items in sections:
        if items:
            lines += ["", texts(title), *items]
    if len(lines) == 1:
        lines.append(texts("today_empty"))
    if data.get("more"):
        lines += ["", texts("tasks_more")]
    return "\n".join(lines)


def tools_view(tools: list[Any], texts: Texts) -> str:
    lines = [texts("tools_header")]
    for tool in sorted(tools, key=lambda tool: tool.name):
        summary = (tool.description or tool.title or "").strip().splitlines()
        lines.append(f"• {tool.name}: {summary[0]}" if summary else f"• {tool.name}")
    return "\n".join(lines)
