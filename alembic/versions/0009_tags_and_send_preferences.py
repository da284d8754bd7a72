"""tags and send preferences: a subscriber's own send time and weekday, tags looked up by name

The preferences page ("when do you want these?") keeps a local send time and a weekday on
the subscriber; the planner puts them into each sequence's schedule where they fit. Tags
already have their table (0001); lint and `drip tag` look them up by name, so index it.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("subscribers") as batch:
        batch.add_column(sa.Column("send_time", sa.String(length=5), nullable=True))
        batch.add_column(sa.Column("send_weekday", sa.String(length=10), nullable=True))
    op.create_index("ix_tags_tag", "tags", ["tag"])


def downgrade() -> None:
    op.drop_index("ix_tags_tag", table_name="tags")
    with op.batch_alter_table("subscribers") as batch:
        batch.drop_column("send_weekday")
        batch.drop_column("send_time")
