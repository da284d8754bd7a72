"""experiments: the split-test variant each delivery carried, clicks through the redirect,
and the leaders sent to everyone after (`winner: auto`)

Revision ID: 0008
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0006"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
UTC = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "delivery_tests",
        sa.Column("delivery_id", Id, nullable=False),
        sa.Column("enrollment_id", Id, nullable=False),
        sa.Column("sequence_key", sa.String(100), nullable=False),
        sa.Column("test_name", sa.String(100), nullable=False),
        sa.Column("variant", sa.String(40), nullable=False),
        sa.PrimaryKeyConstraint("delivery_id", name="pk_delivery_tests"),
        sa.ForeignKeyConstraint(["delivery_id"], ["deliveries.id"], ondelete="CASCADE",
                                name="fk_delivery_tests_delivery_id_deliveries"),
        sa.ForeignKeyConstraint(["enrollment_id"], ["enrollments.id"], ondelete="CASCADE",
                                name="fk_delivery_tests_enrollment_id_enrollments"),
    )
    op.create_index("ix_delivery_tests_test", "delivery_tests", ["sequence_key", "test_name"])
    op.create_table(
        "clicks",
        sa.Column("id", Id, nullable=False),
        sa.Column("delivery_id", Id, nullable=False),
        sa.Column("subscriber_id", Id, nullable=False),
        sa.Column("sequence_key", sa.String(100), nullable=False),
        sa.Column("step_key", sa.String(100), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("clicked_at", UTC, nullable=False),
        sa.Column("scanner", sa.String(40), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_clicks"),
        sa.ForeignKeyConstraint(["delivery_id"], ["deliveries.id"], ondelete="CASCADE",
                                name="fk_clicks_delivery_id_deliveries"),
        sa.ForeignKeyConstraint(["subscriber_id"], ["subscribers.id"], ondelete="CASCADE",
                                name="fk_clicks_subscriber_id_subscribers"),
    )
    op.create_index("ix_clicks_delivery", "clicks", ["delivery_id", "clicked_at"])
    op.create_index("ix_clicks_sequence", "clicks", ["sequence_key"])
    op.create_table(
        "test_winners",
        sa.Column("sequence_key", sa.String(100), nullable=False),
        sa.Column("test_name", sa.String(100), nullable=False),
        sa.Column("variant", sa.String(40), nullable=False),
        sa.Column("decided_at", UTC, nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("sequence_key", "test_name", name="pk_test_winners"),
    )


def downgrade() -> None:
    op.drop_table("test_winners")
    op.drop_index("ix_clicks_sequence", table_name="clicks")
    op.drop_index("ix_clicks_delivery", table_name="clicks")
    op.drop_table("clicks")
    op.drop_index("ix_delivery_tests_test", table_name="delivery_tests")
    op.drop_table("delivery_tests")
