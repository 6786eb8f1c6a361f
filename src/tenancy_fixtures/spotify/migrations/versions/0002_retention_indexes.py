"""Index event times, so purging events past a tenant's retention reads only them.

Revision ID: 0002_retention_indexes
Revises: 0001_baseline
Create Date: 2026-12-05
"""

from __future__ import annotations

from alembic import op

revision = "0002_retention_indexes"
down_revision: str | None = "0001_baseline"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_listening_events_played_at", "listening_events", ["played_at"])
    op.create_index("ix_product_events_occurred_at", "product_events", ["occurred_at"])


def downgrade() -> None:
    op.drop_index("ix_product_events_occurred_at", table_name="product_events")
    op.drop_index("ix_listening_events_played_at", table_name="listening_events")
