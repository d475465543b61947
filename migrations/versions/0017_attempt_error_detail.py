"""The technical detail of a failed attempt (the transport exception's own text) beside its
error, which is now one short sentence; attempts recorded before keep their long error and no
detail.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-06 07:30:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None


def upgrade():
    # Nullable without a default: PostgreSQL adds it without rewriting the table.
    with op.batch_alter_table('attempts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('error_detail', sa.Text(), nullable=True))


def downgrade():
    with op.batch_alter_table('attempts', schema=None) as batch_op:
        batch_op.drop_column('error_detail')
