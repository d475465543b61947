"""event_feeds: the events an account may see without posting them, an index range by account
(the events of a platform token that matched its webhooks); ix_events_account_created replaces
ix_events_account_id for the events it posted; backfills: where a backfill resumes.

The existing events get their feed rows from ``flask events backfill-feeds``, in batches, while
the service runs (docs/operations.md). On PostgreSQL the new index is built concurrently: the
events table keeps taking events meanwhile.

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-06 10:30:00

"""
from alembic import op
import sqlalchemy as sa

import webhookapp.models


# revision identifiers, used by Alembic.
revision = '0024'
down_revision = '0023'
branch_labels = None
depends_on = None

COLUMNS = ['account_id', 'created_at', 'id']


def upgrade():
    op.create_table(
        'event_feeds',
        sa.Column('account_id', sa.String(length=20), nullable=False),
        sa.Column('created_at', webhookapp.models.UTCDateTime(), nullable=False),
        sa.Column('event_id', sa.String(length=20), nullable=False),
        sa.PrimaryKeyConstraint('account_id', 'created_at', 'event_id', name=op.f('pk_event_feeds')),
    )
    op.create_table(
        'backfills',
        sa.Column('name', sa.String(length=40), nullable=False),
        sa.Column('position', sa.String(length=80), nullable=True),
        sa.Column('done', sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint('name', name=op.f('pk_backfills')),
    )
    if op.get_bind().dialect.name == 'postgresql':
        with op.get_context().autocommit_block():
            op.create_index('ix_events_account_created', 'events', COLUMNS, unique=False,
                            postgresql_concurrently=True, if_not_exists=True)
            op.drop_index('ix_events_account_id', table_name='events', postgresql_concurrently=True,
                          if_exists=True)
    else:
        with op.batch_alter_table('events', schema=None) as batch_op:
            batch_op.create_index('ix_events_account_created', COLUMNS, unique=False)
            batch_op.drop_index('ix_events_account_id')


def downgrade():
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.create_index('ix_events_account_id', ['account_id'], unique=False)
        batch_op.drop_index('ix_events_account_created')
    op.drop_table('backfills')
    op.drop_table('event_feeds')
