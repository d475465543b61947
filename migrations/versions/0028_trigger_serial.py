"""trigger serial: webhooks.trigger_serial, how many triggers the webhook has finished (succeeded,
given up, dropped). It names the next trigger's message (``webhook-id``: ``msg_<webhook id>_<serial>``)
from what was committed before the trigger's claim, so that a claim lost with its commit names the
same message when it is made again, and the claim need not wait for its commit to reach the disk.

Every webhook starts at 0: the names made before (``msg_<webhook id>_<16 hex digits>``) cannot
equal one made from a serial, and a trigger that has one keeps it.

Revision ID: 0028
Revises: 0027
Create Date: 2026-12-06 23:30:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0028'
down_revision = '0027'
branch_labels = None
depends_on = None


def upgrade():
    # A constant default: PostgreSQL 11 and later add it without rewriting the table.
    with op.batch_alter_table('webhooks', schema=None) as batch_op:
        batch_op.add_column(sa.Column('trigger_serial', sa.Integer(), server_default='0', nullable=False))


def downgrade():
    with op.batch_alter_table('webhooks', schema=None) as batch_op:
        batch_op.drop_column('trigger_serial')
