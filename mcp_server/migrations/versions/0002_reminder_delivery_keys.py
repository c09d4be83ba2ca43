"""Reminders get a delivery key (a UUID the bot remembers instead of the id) and the reason they failed.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""

import uuid
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("reminders") as batch:
        batch.add_column(sa.Column("delivery_key", sa.Uuid(), nullable=True))
        batch.add_column(sa.Column("last_error", sa.Text(), nullable=True))
    reminders = sa.table("reminders", sa.column("id", sa.Integer()), sa.column("delivery_key", sa.Uuid()))
    connection = op.get_bind()
    # One key per existing row, made here: neither SQLite nor PostgreSQL < 13 has a built-in UUID generator.
    for (reminder_id,) in connection.execute(sa.select(reminders.c.id)).all():
        connection.execute(reminders.update().where(reminders.c.id == reminder_id).values(delivery_key=uuid.uuid4()))
    with op.batch_alter_table("reminders") as batch:
        batch.alter_column("delivery_key", existing_type=sa.Uuid(), nullable=False)
        batch.create_index("ix_reminders_delivery_key", ["delivery_key"], unique=True)


def downgrade() -> None:
    with op.batch_alter_table("reminders") as batch:
        batch.drop_index("ix_reminders_delivery_key")
        batch.drop_column("last_error")
        batch.drop_column("delivery_key")
