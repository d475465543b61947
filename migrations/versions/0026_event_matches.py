"""event_matches: the events each webhook matched, an index range by webhook, newest first; it
replaces ix_events_product_class_created, through which a webhook's events were found by testing
the JSON list of every event of its product.

The existing events get their rows from ``flask events backfill-matches``, in batches, while the
service runs (docs/operations.md); until it is done, the reads of a webhook's events test the
events' lists as before (``backfills`` says whether it is done: at once where no event is stored
yet). On PostgreSQL the old index is dropped concurrently.

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-06 17:00:00

"""
from alembic import op
import sqlalchemy as sa

import webhookapp.models


# revision identifiers, used by Alembic.
revision = '0026'
down_revision = '0025'
branch_labels = None
depends_on = None

OLD_INDEX = 'ix_events_product_class_created'
OLD_COLUMNS = ['product_id', 'object_class', 'created_at', 'id']


def upgrade():
    op.create_table(
        'event_matches',
        sa.Column('webhook_id', sa.String(length=20), nullable=False),
        sa.Column('created_at', webhookapp.models.UTCDateTime(), nullable=False),
        sa.Column('event_id', sa.String(length=20), nullable=False),
        sa.PrimaryKeyConstraint('webhook_id', 'created_at', 'event_id', name=op.f('pk_event_matches')),
    )
    # Nothing to backfill where no event is stored yet (a new installation, the tests).
    op.execute(
        "INSERT INTO backfills (name, position, done) "
        "SELECT 'event_matches', NULL, NOT EXISTS (SELECT 1 FROM events)"
    )
    if op.get_bind().dialect.name == 'postgresql':
        with op.get_context().autocommit_block():
            op.drop_index(OLD_INDEX, table_name='events', postgresql_concurrently=True, if_exists=True)
    else:
        with op.batch_alter_table('events', schema=None) as batch_op:
            batch_op.drop_index(OLD_INDEX)


def downgrade():
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.create_index(OLD_INDEX, OLD_COLUMNS, unique=False)
    op.execute("DELETE FROM backfills WHERE name = 'event_matches'")
    op.drop_table('event_matches')
