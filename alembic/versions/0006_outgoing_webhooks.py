"""outgoing webhooks: the queue of Standard Webhooks events drip posts to other systems

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
UTC = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "webhook_messages",
        sa.Column("id", Id, nullable=False),
        sa.Column("msg_id", sa.String(40), nullable=False),
        sa.Column("event", sa.String(40), nullable=False),
        sa.Column("subscriber_id", Id, nullable=True),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(12), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", UTC, nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.Column("delivered_at", UTC, nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_webhook_messages"),
        sa.UniqueConstraint("msg_id", name="uq_webhook_messages_msg_id"),
    )
    op.create_index("ix_webhook_messages_pending", "webhook_messages",
                    ["state", "subscriber_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_webhook_messages_pending", table_name="webhook_messages")
    op.drop_table("webhook_messages")
