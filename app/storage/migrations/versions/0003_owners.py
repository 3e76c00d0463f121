"""owners: the API key name that created each dataset and job (NULL: before keys had names)

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("datasets") as batch:
        batch.add_column(sa.Column("owner", sa.String(64)))
        batch.create_index("ix_datasets_owner", ["owner"])
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("owner", sa.String(64)))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("owner")
    with op.batch_alter_table("datasets") as batch:
        batch.drop_index("ix_datasets_owner")
        batch.drop_column("owner")
