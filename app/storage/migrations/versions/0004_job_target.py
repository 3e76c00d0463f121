"""job target: what a job's pipeline rewrites, the record's text (a generation record's prompt)
or a generation record's response

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("target", sa.String(16), nullable=False, server_default="text"))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("target")
