"""Times as the LLM writes and reads them: local ISO 8601 in the user's timezone, stored as UTC."""

import difflib
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from zoneinfo import ZoneInfo, available_timezones

from mcp.server.mcpserver.exceptions import ToolError

TIME_FORMAT_HINT = "Write it as 'YYYY-MM-DDTHH:MM' in the user's local time, or 'YYYY-MM-DD' for a whole day."


@cache
def _known_timezones() -> frozenset[str]:
    return frozenset(available_timezones())


def resolve_timezone(name: str) -> ZoneInfo:
    """The zone for an IANA name, or a tool error that suggests the closest names."""
    if name not in _known_timezones():
        by_city = sorted(zone for zone in _known_timezones() if zone.rsplit("/", 1)[-1].lower() == name.lower())
        close = by_city or difflib.get_close_matches(name, sorted(_known_timezones()), n=3)
        hint = f" Did you mean {' or '.join(repr(zone) for zone in close)}?" if close else ""
        raise ToolError(f"Unknown timezone {name!r}: use an IANA name such as 'Europe/Berlin'.{hint}")
    return ZoneInfo(name)


def parse_local_time(text: str, zone: ZoneInfo) -> tuple[datetime, date | None]:
    """Read a date or date-time: returns the UTC instant, and the calendar day when it names a whole day.

    A whole day maps to the midnight that ends it, so "overdue" is "that instant has passed" for every task.
    A date-time without an offset is in `zone`; one with an offset keeps it.
    """
    text = text.strip()
    try:
        if len(text) == len("YYYY-MM-DD"):
            day = date.fromisoformat(text)
            return end_of_day(day, zone), day
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise ToolError(f"Cannot read the time {text!r} ({exc}). {TIME_FORMAT_HINT}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
        if in_dst_gap(moment, zone):
            later = (moment + timedelta(hours=1)).astimezone(UTC).astimezone(zone)
            raise ToolError(
                f"{moment:%Y-%m-%d %H:%M} does not exist in {zone.key}: the clocks jump forward then. "
                f"Ask the user, or use {later:%H:%M}."
            )
    try:
        return moment.astimezone(UTC), None
    except OverflowError:
        raise ToolError(f"The time {text!r} is out of range. {TIME_FORMAT_HINT}") from None


def in_dst_gap(local: datetime, zone: ZoneInfo) -> bool:
    """A wall-clock time the clocks skip (e.g. 02:30 on a spring-forward night) does not survive a round trip."""
    try:
        back = local.astimezone(UTC).astimezone(zone)
    except OverflowError:
        return False
    return back.replace(tzinfo=None) != local.replace(tzinfo=None)


def end_of_day(day: date, zone: ZoneInfo) -> datetime:
    try:
        return datetime.combine(day + timedelta(days=1), time(), tzinfo=zone).astimezone(UTC)
    except OverflowError:
        raise ToolError(f"The date {day.isoformat()} is out of range. {TIME_FORMAT_HINT}") from None


def day_bounds(now: datetime, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """The UTC instants where the user's current local day starts and ends."""
    today = now.astimezone(zone).date()
    start = datetime.combine(today, time(), tzinfo=zone).astimezone(UTC)
    return start, end_of_day(today, zone)


def local_iso(moment: datetime, zone: ZoneInfo) -> str:
    return moment.astimezone(zone).isoformat(timespec="seconds")
