"""What the handler's answer says about retrying: the due time a handler asked for in its
``Retry-After`` (a 429 or 503), so that the pages can say the next attempt's time was the
handler's; and why the engine disabled a webhook (its handler answered 410 Gone).

Both columns are empty on existing rows: no pending retry was asked for, no webhook was disabled
by its handler.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-06 10:30:00

"""
from alembic import op
import sqlalchemy as sa

import webhookapp.models


# revision identifiers, used by Alembic.
revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('webhooks', schema=None) as batch_op:
        batch_op.add_column(sa.Column('retry_asked_at', webhookapp.models.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('disabled_reason', sa.String(length=200), nullable=True))


def downgrade():
    with op.batch_alter_table('webhooks', schema=None) as batch_op:
        batch_op.drop_column('disabled_reason')
        batch_op.drop_column('retry_asked_at')
