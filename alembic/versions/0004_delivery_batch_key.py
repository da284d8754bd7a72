"""delivery batch key: the SendGrid request an unknown email went out in

An `unknown` delivery keeps the batch_key of the request that got no answer, so drip can
ask SendGrid's Email Activity API what it holds of that request (drip reconcile). Only
unknown rows are indexed: the only lookup is "the unknown emails of this batch".

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

UNKNOWN_WHERE = "state = 'unknown' AND batch_key IS NOT NULL"


def upgrade() -> None:
    with op.batch_alter_table("deliveries") as batch:
        batch.add_column(sa.Column("batch_key", sa.String(length=32), nullable=True))
    op.create_index("ix_deliveries_unknown_batch", "deliveries", ["batch_key"],
                    postgresql_where=sa.text(UNKNOWN_WHERE), sqlite_where=sa.text(UNKNOWN_WHERE))


def downgrade() -> None:
    op.drop_index("ix_deliveries_unknown_batch", table_name="deliveries")
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_column("batch_key")
