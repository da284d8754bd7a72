"""lean delivery indexes: index only the rows each index serves

Every update of a delivery writes a new row version, and a version is entered in every
index whose predicate it meets. Before this, each of an email's versions (scheduled,
sending, sent) went into the state and message-id indexes. Now:

- ix_deliveries_state covers the states an operator or the reaper looks up by state
  (claimed, sending, failed, unknown, held, cancelled): not the scheduled rows, which
  ix_deliveries_due serves, nor the sent ones, which are most of the table.
- ix_deliveries_message_id covers the rows that have a provider message id.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

STATE_WHERE = "state NOT IN ('scheduled', 'sent')"
MESSAGE_ID_WHERE = "provider_message_id IS NOT NULL"


def upgrade() -> None:
    op.drop_index("ix_deliveries_state", table_name="deliveries")
    op.drop_index("ix_deliveries_message_id", table_name="deliveries")
    op.create_index("ix_deliveries_state", "deliveries", ["state", "lease_until"],
                    postgresql_where=sa.text(STATE_WHERE), sqlite_where=sa.text(STATE_WHERE))
    op.create_index("ix_deliveries_message_id", "deliveries", ["provider_message_id"],
                    postgresql_where=sa.text(MESSAGE_ID_WHERE),
                    sqlite_where=sa.text(MESSAGE_ID_WHERE))


def downgrade() -> None:
    op.drop_index("ix_deliveries_state", table_name="deliveries")
    op.drop_index("ix_deliveries_message_id", table_name="deliveries")
    op.create_index("ix_deliveries_state", "deliveries", ["state", "lease_until"])
    op.create_index("ix_deliveries_message_id", "deliveries", ["provider_message_id"])
