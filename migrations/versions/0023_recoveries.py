"""Recoveries: a webhook's failed triggers of a time range sent once more, in the background,
with their progress and the cursor a worker resumes from.

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-06 10:30:00

"""
from alembic import op
import sqlalchemy as sa

from webhookapp.models.columns import UTCDateTime


# revision identifiers, used by Alembic.
revision = '0023'
down_revision = '0022'
branch_labels = None
depends_on = None

RUNNING = sa.text("state = 'running'")


def upgrade():
    op.create_table(
        'recoveries',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('account_id', sa.String(length=20), nullable=False),
        sa.Column('webhook_id', sa.String(length=20), nullable=False),
        sa.Column('since', UTCDateTime(), nullable=False),
        sa.Column('until', UTCDateTime(), nullable=False),
        sa.Column('state', sa.String(length=20), nullable=False),
        sa.Column('total', sa.Integer(), nullable=False),
        sa.Column('sent', sa.Integer(), nullable=False),
        sa.Column('succeeded', sa.Integer(), nullable=False),
        sa.Column('cursor_started_at', UTCDateTime(), nullable=False),
        sa.Column('cursor_attempt_id', sa.Integer(), nullable=False),
        sa.Column('generation', sa.Integer(), nullable=False),
        sa.Column('next_at', UTCDateTime(), nullable=False),
        sa.Column('lease_until', UTCDateTime(), nullable=True),
        sa.Column('note', sa.Text(), nullable=True),
        sa.Column('created_at', UTCDateTime(), nullable=False),
        sa.Column('finished_at', UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], ),
        sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('recoveries', schema=None) as batch_op:
        batch_op.create_index('uq_recoveries_running_webhook', ['webhook_id'], unique=True,
                              postgresql_where=RUNNING, sqlite_where=RUNNING)
        batch_op.create_index('ix_recoveries_webhook_id', ['webhook_id', 'id'], unique=False)
        batch_op.create_index('ix_recoveries_running_lease', ['lease_until'], unique=False,
                              postgresql_where=RUNNING, sqlite_where=RUNNING)


def downgrade():
    op.drop_table('recoveries')
