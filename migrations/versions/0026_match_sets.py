"""match sets: each event notes the set of webhooks it matched (events.match_set_id, a set made
by the first event that matches it), and ix_events_match_set_created makes a webhook's events the
ranges of its few sets; it replaces ix_events_product_class_created, through which a webhook's
events were found by testing the JSON list of every event of its product.

The existing events get their set from ``flask events backfill-matches``, in batches, while the
service runs (docs/operations.md); until it is done, the reads of a webhook's events test the
events' lists as before (``backfills`` says whether it is done: at once where no event is stored
yet). The new column is nullable (no table rewrite); on PostgreSQL the indexes are built and
dropped concurrently.

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-06 17:00:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0026'
down_revision = '0025'
branch_labels = None
depends_on = None

OLD_INDEX = 'ix_events_product_class_created'
OLD_COLUMNS = ['product_id', 'object_class', 'created_at', 'id']
NEW_INDEX = 'ix_events_match_set_created'
NEW_COLUMNS = ['match_set_id', 'created_at', 'id']


def upgrade():
    op.create_table(
        'match_sets',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('digest', sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_match_sets')),
        sa.UniqueConstraint('digest', name=op.f('uq_match_sets_digest')),
    )
    op.create_table(
        'match_set_webhooks',
        sa.Column('webhook_id', sa.String(length=20), nullable=False),
        sa.Column('set_id', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('webhook_id', 'set_id', name=op.f('pk_match_set_webhooks')),
    )
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('match_set_id', sa.Integer(), nullable=True))
    # Nothing to backfill where no event is stored yet (a new installation, the tests).
    op.execute(
        "INSERT INTO backfills (name, position, done) "
        "SELECT 'event_matches', NULL, NOT EXISTS (SELECT 1 FROM events)"
    )
    if op.get_bind().dialect.name == 'postgresql':
        with op.get_context().autocommit_block():
            op.create_index(NEW_INDEX, 'events', NEW_COLUMNS, unique=False, postgresql_concurrently=True,
                            if_not_exists=True)
            op.drop_index(OLD_INDEX, table_name='events', postgresql_concurrently=True, if_exists=True)
    else:
        with op.batch_alter_table('events', schema=None) as batch_op:
            batch_op.create_index(NEW_INDEX, NEW_COLUMNS, unique=False)
            batch_op.drop_index(OLD_INDEX)


def downgrade():
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.create_index(OLD_INDEX, OLD_COLUMNS, unique=False)
        batch_op.drop_index(NEW_INDEX)
        batch_op.drop_column('match_set_id')
    op.execute("DELETE FROM backfills WHERE name = 'event_matches'")
    op.drop_table('match_set_webhooks')
    op.drop_table('match_sets')
