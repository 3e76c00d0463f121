"""job claims: which replica works on a job and until when its lease runs; which replica
finished each shard; the digests of a dataset's input shards (checked before a job runs)

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("claimed_by", sa.String(64), nullable=True))
        batch.add_column(sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("job_shards") as batch:
        batch.add_column(sa.Column("replica", sa.String(64), nullable=True))
    with op.batch_alter_table("datasets") as batch:
        batch.add_column(sa.Column("shard_sha256", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("datasets") as batch:
        batch.drop_column("shard_sha256")
    with op.batch_alter_table("job_shards") as batch:
        batch.drop_column("replica")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("lease_until")
        batch.drop_column("claimed_by")
