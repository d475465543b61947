"""A webhook's signature format (the platform's JWT, or Standard Webhooks), whether a change of
format waits for Switch to next secret, and the message id of its current trigger, which every
retry of that trigger repeats in ``webhook-id``.

Existing webhooks keep the JWT: nothing they send changes.

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-06 10:30:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0022'
down_revision = '0021'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('webhooks', schema=None) as batch_op:
        batch_op.add_column(sa.Column('signature_format', sa.String(length=16), server_default='jwt', nullable=False))
        batch_op.add_column(
            sa.Column('signature_switch_pending', sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch_op.add_column(sa.Column('trigger_message_id', sa.String(length=40), nullable=True))


def downgrade():
    with op.batch_alter_table('webhooks', schema=None) as batch_op:
        batch_op.drop_column('trigger_message_id')
        batch_op.drop_column('signature_switch_pending')
        batch_op.drop_column('signature_format')
