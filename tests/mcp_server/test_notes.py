"""Note tools: save, replace, search by words in any case, delete."""

from tests.mcp_server.conftest import UserFactory


async def test_save_search_replace_and_delete(as_user: UserFactory) -> None:
    async with as_user() as alice:
        wifi = await alice.call("notes_save", title="Wi-Fi", text="Network Butler, password 'tea-for-two'")
        assert wifi["title"] == "Wi-Fi" and "tea-for-two" in wifi["text"], wifi
        await alice.call("notes_save", text="Mum's birthday is on 12 May")

        found = await alice.call("notes_search", query="PASSWORD butler")
        assert [note["id"] for note in found["notes"]] == [wifi["id"]], found
        everything = await alice.call("notes_search")
        assert [note["text"][:5] for note in everything["notes"]] == ["Mum's", "Netwo"], "expected newest first"

        replaced = await alice.call("notes_save", note_id=wifi["id"], text="Password changed to 'coffee'")
        assert replaced["id"] == wifi["id"] and replaced["title"] is None, replaced
        assert (await alice.call("notes_search", query="tea-for-two"))["notes"] == []

        assert await alice.call("notes_delete", note_id=wifi["id"]) == {"id": wifi["id"], "deleted": True}
        error = await alice.fails("notes_delete", note_id=wifi["id"])
        assert f"No note with id {wifi['id']}" in error and "notes_search" in error, error


async def test_search_is_case_insensitive_beyond_ascii(as_user: UserFactory) -> None:
    async with as_user() as alice:
        await alice.call("notes_save", text="Купить ХЛЕБ и молоко")
        found = await alice.call("notes_search", query="хлеб")
        assert len(found["notes"]) == 1, f"expected the Cyrillic note to match in any case, got {found}"


async def test_search_limit_and_size_limits(as_user: UserFactory) -> None:
    async with as_user() as alice:
        for n in range(3):
            await alice.call("notes_save", text=f"note {n}")
        page = await alice.call("notes_search", limit=2)
        assert len(page["notes"]) == 2 and page["more"] is True, page
        assert "at most 4000 characters" in await alice.fails("notes_save", text="x" * 4001)
        assert "at most 200 characters" in await alice.fails("notes_search", query="q" * 201)
