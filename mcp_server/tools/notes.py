"""Note tools: things the user wants remembered, found again by the words in them."""

from zoneinfo import ZoneInfo

from mcp.server import MCPServer
from mcp.types import ToolAnnotations
from pydantic import BaseModel, Field
from sqlalchemy import select

from mcp_server import models
from mcp_server.models import utcnow
from mcp_server.times import local_iso
from mcp_server.tools.common import (
    Deleted,
    RowId,
    ToolDeps,
    check_room,
    limit_param,
    owned_row,
    text_param,
)
from mcp_server.users import UserId
from shared.results import Note


class NoteList(BaseModel):
    notes: list[Note]
    more: bool = Field(description="More notes match than were returned: add words to the query or raise the limit")


def note_view(note: models.Note, zone: ZoneInfo) -> Note:
    return Note(
        id=note.id,
        title=note.title,
        text=note.text,
        created_at=local_iso(note.created_at, zone),
        updated_at=local_iso(note.updated_at, zone),
    )


def register(mcp: MCPServer, deps: ToolDeps) -> None:
    limits = deps.limits
    text_type = text_param(limits.max_text_length)
    title_type = text_param(limits.max_title_length)
    query_type = text_param(limits.max_query_length)
    limit_type = limit_param(limits)

    @mcp.tool(title="Save a note")
    async def notes_save(
        user_id: UserId,
        text: text_type,
        title: title_type | None = None,
        note_id: RowId | None = None,
    ) -> Note:
        """Save a note; with note_id, replace that note."""
        async with deps.db.session() as session:
            zone = await deps.zone(session, user_id)
            if note_id is None:
                await check_room(session, models.Note, user_id, limits)
                note = models.Note(user_id=user_id, created_at=utcnow())
                session.add(note)
            else:
                note = await owned_row(session, models.Note, note_id, user_id)
            note.title, note.text, note.updated_at = title, text, utcnow()
            note.search_text = f"{title or ''}\n{text}".casefold()
            await session.flush()
            return note_view(note, zone)

    @mcp.tool(title="Search notes", annotations=ToolAnnotations(read_only_hint=True))
    async def notes_search(
        user_id: UserId,
        query: query_type | None = None,
        limit: limit_type = limits.list_default,
    ) -> NoteList:
        """Find notes containing all words of query; no query lists all."""
        async with deps.db.session() as session:
            zone = await deps.zone(session, user_id)
            statement = select(models.Note).where(models.Note.user_id == user_id)
            for word in (query or "").casefold().split():
                statement = statement.where(models.Note.search_text.contains(word, autoescape=True))
            statement = statement.order_by(models.Note.updated_at.desc(), models.Note.id.desc()).limit(limit + 1)
            rows = (await session.scalars(statement)).all()
        return NoteList(notes=[note_view(row, zone) for row in rows[:limit]], more=len(rows) > limit)

    @mcp.tool(title="Delete a note", annotations=ToolAnnotations(destructive_hint=True, idempotent_hint=False))
    async def notes_delete(user_id: UserId, note_id: RowId) -> Deleted:
        """Delete a note for good."""
        async with deps.db.session() as session:
            await session.delete(await owned_row(session, models.Note, note_id, user_id))
        return Deleted(id=note_id)
