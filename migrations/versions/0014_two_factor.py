"""Two-factor login: a user's encrypted TOTP seed and last accepted time step, recovery codes,
and the account setting that requires two-factor login

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06 04:40:00

"""
from alembic import op
import sqlalchemy as sa

import webhookapp.models


# revision identifiers, used by Alembic.
revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade():
    # A plain ADD COLUMN: a batch would copy the accounts table on SQLite, which its tokens' and
    # users' foreign keys refuse while rows point at it.
    op.add_column('accounts', sa.Column('require_two_factor', sa.Boolean(), nullable=False, server_default=sa.false()))
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('totp_secret', sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column('totp_last_step', sa.BigInteger(), nullable=True))
    op.create_table(
        'recovery_codes',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('code_hash', sa.String(length=64), nullable=False),
        sa.Column('used_at', webhookapp.models.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('recovery_codes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_recovery_codes_user_id'), ['user_id'], unique=False)


def downgrade():
    with op.batch_alter_table('recovery_codes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_recovery_codes_user_id'))
    op.drop_table('recovery_codes')
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('totp_last_step')
        batch_op.drop_column('totp_secret')
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.drop_column('require_two_factor')
