"""ix_webhooks_due: the pending triggers in due order, for claims and the next due time

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 01:10:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

PENDING = sa.text("next_trigger_at IS NOT NULL")


def upgrade():
    with op.batch_alter_table('webhooks', schema=None) as batch_op:
        batch_op.create_index(
            'ix_webhooks_due', ['next_trigger_at', 'id'], unique=False, postgresql_where=PENDING, sqlite_where=PENDING
        )


def downgrade():
    with op.batch_alter_table('webhooks', schema=None) as batch_op:
        batch_op.drop_index('ix_webhooks_due', postgresql_where=PENDING, sqlite_where=PENDING)
