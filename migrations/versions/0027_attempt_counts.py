"""attempt counts: webhooks.attempts_kept, each webhook's count of stored attempts, kept by every
writer of attempts in the same transaction, so that the API reads a page past the middle of a
long list of attempts from its far end.

The column is added without a value for the webhooks there are (no table rewrite, NULL: not
counted yet, and never read then); ``flask attempts backfill-counts`` counts them in batches while
the service runs (docs/operations.md, "Upgrading"). A webhook made after the upgrade starts at 0.

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-06 20:00:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0027'
down_revision = '0026'
branch_labels = None
depends_on = None


def upgrade():
    if op.get_bind().dialect.name == 'postgresql':
        # Added without a default, then given one: the existing rows keep NULL, new rows get 0.
        op.add_column('webhooks', sa.Column('attempts_kept', sa.Integer(), nullable=True))
        op.alter_column('webhooks', 'attempts_kept', server_default='0')
    else:
        # SQLite cannot give a column a default after the fact without copying the table.
        with op.batch_alter_table('webhooks', schema=None) as batch_op:
            batch_op.add_column(sa.Column('attempts_kept', sa.Integer(), server_default='0', nullable=True))
        op.execute('UPDATE webhooks SET attempts_kept = NULL')


def downgrade():
    with op.batch_alter_table('webhooks', schema=None) as batch_op:
        batch_op.drop_column('attempts_kept')
