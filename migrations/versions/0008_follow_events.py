"""Events followed to their webhooks (and found by object id), redeliveries marked, attempts
summed per hour for the details page's chart

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 06:04:25

"""
from alembic import op
import sqlalchemy as sa

import webhookapp.models


# revision identifiers, used by Alembic.
revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('attempt_hours',
    sa.Column('webhook_id', sa.String(length=20), nullable=False),
    sa.Column('hour', webhookapp.models.columns.UTCDateTime(), nullable=False),
    sa.Column('successes', sa.Integer(), nullable=False),
    sa.Column('failures', sa.Integer(), nullable=False),
    sa.Column('duration_buckets', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('webhook_id', 'hour', name=op.f('pk_attempt_hours'))
    )
    with op.batch_alter_table('attempts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('redelivery_of', sa.Integer(), nullable=True))

    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.create_index('ix_events_object_id', ['object_id'], unique=False)
        batch_op.create_index('ix_events_product_class_created', ['product_id', 'object_class', 'created_at', 'id'], unique=False)



def downgrade():
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.drop_index('ix_events_product_class_created')
        batch_op.drop_index('ix_events_object_id')

    with op.batch_alter_table('attempts', schema=None) as batch_op:
        batch_op.drop_column('redelivery_of')

    op.drop_table('attempt_hours')
