"""The audit trail: one row per recorded action (models/audit.py)

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06 04:45:00

"""
from alembic import op
import sqlalchemy as sa

from webhookapp.models.columns import UTCDateTime


# revision identifiers, used by Alembic.
revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'audit_entries',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('account_id', sa.String(length=20), nullable=True),
        sa.Column('at', UTCDateTime(), nullable=False),
        sa.Column('actor_kind', sa.String(length=10), nullable=False),
        sa.Column('actor_label', sa.String(length=200), nullable=False),
        sa.Column('actor_user_id', sa.Integer(), nullable=True),
        sa.Column('actor_token_id', sa.Integer(), nullable=True),
        sa.Column('action', sa.String(length=40), nullable=False),
        sa.Column('object_type', sa.String(length=20), nullable=True),
        sa.Column('object_id', sa.String(length=40), nullable=True),
        sa.Column('object_label', sa.String(length=200), nullable=True),
        sa.Column('address', sa.String(length=64), nullable=True),
        sa.Column('user_agent', sa.String(length=300), nullable=True),
        sa.Column('changes', sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('audit_entries', schema=None) as batch_op:
        batch_op.create_index('ix_audit_entries_at', ['at'], unique=False)
        batch_op.create_index('ix_audit_account_at', ['account_id', 'at', 'id'], unique=False)
        batch_op.create_index('ix_audit_account_object', ['account_id', 'object_id', 'at', 'id'], unique=False)
        batch_op.create_index('ix_audit_account_action', ['account_id', 'action', 'at', 'id'], unique=False)
        batch_op.create_index('ix_audit_account_actor', ['account_id', 'actor_label', 'at', 'id'], unique=False)


def downgrade():
    op.drop_table('audit_entries')
