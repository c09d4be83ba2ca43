"""Recurring reminders: a reminder_series table; reminders.series_id and .occurrence for the occurrences of one.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "reminder_series",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("rule", sa.Text(), nullable=False),
        sa.Column("start", sa.DateTime(timezone=False), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", UTC_TIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reminder_series")),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_reminder_series_user_status", "reminder_series", ["user_id", "status"])
    with op.batch_alter_table("reminders") as batch:
        batch.add_column(sa.Column("series_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("occurrence", sa.DateTime(timezone=False), nullable=True))
        batch.create_foreign_key(
            op.f("fk_reminders_series_id_reminder_series"), "reminder_series", ["series_id"], ["id"]
        )
        batch.create_index("ix_reminders_series_status", ["series_id", "status"])


def downgrade() -> None:
    with op.batch_alter_table("reminders") as batch:
        batch.drop_index("ix_reminders_series_status")
        batch.drop_constraint(op.f("fk_reminders_series_id_reminder_series"), type_="foreignkey")
        batch.drop_column("occurrence")
        batch.drop_column("series_id")
    op.drop_index("ix_reminder_series_user_status", table_name="reminder_series")
    op.drop_table("reminder_series")
