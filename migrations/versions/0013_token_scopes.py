"""Scoped and expiring API tokens: each token's scopes (a token made before this has every scope),
an optional expiry, and the client address of its last use

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06 04:40:00

"""
from alembic import op
import sqlalchemy as sa

import webhookapp.models


# revision identifiers, used by Alembic.
revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None

# Written out, not imported: a migration keeps the scopes that existed when it was written.
ALL_SCOPES = "webhooks:read webhooks:write webhooks:secrets events:write events:read audit:read validations:write"


def upgrade():
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.add_column(sa.Column('last_used_address', sa.String(length=45), nullable=True))
        batch_op.add_column(sa.Column('scopes', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('expires_at', webhookapp.models.UTCDateTime(), nullable=True))
    # Existing tokens keep what they could do: every scope, no expiry.
    op.execute(sa.text("UPDATE api_tokens SET scopes = :scopes").bindparams(scopes=ALL_SCOPES))
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.alter_column('scopes', existing_type=sa.String(length=200), nullable=False)


def downgrade():
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.drop_column('expires_at')
        batch_op.drop_column('scopes')
        batch_op.drop_column('last_used_address')
