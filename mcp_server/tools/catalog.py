"""Every tool the server can offer, by domain: what `enabled_tools` in config/mcp_server.yaml may name."""

DOMAINS: dict[str, tuple[str, ...]] = {
    "tasks": ("tasks_add", "tasks_list", "tasks_complete", "tasks_update", "tasks_delete"),
    "notes": ("notes_save", "notes_search", "notes_delete"),
    "reminders": ("reminders_create", "reminders_list", "reminders_cancel"),
    "time": ("time_now", "time_set_timezone"),
    "agenda": ("agenda_today",),
}

TOOL_NAMES: frozenset[str] = frozenset(name for names in DOMAINS.values() for name in names)
