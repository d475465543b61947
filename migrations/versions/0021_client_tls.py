"""Mutual TLS to handlers: a webhook's client certificate (PEM), its key (encrypted like the
secrets, docs/security.md "Secrets at rest") and the CA bundle to trust for its handler. All
three are empty for existing webhooks, which keep calling as before.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-06 10:40:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0021'
down_revision = '0020'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('webhooks', schema=None) as batch_op:
        batch_op.add_column(sa.Column('tls_client_cert', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('tls_client_key_encrypted', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('tls_ca_bundle', sa.Text(), nullable=True))


def downgrade():
    with op.batch_alter_table('webhooks', schema=None) as batch_op:
        batch_op.drop_column('tls_ca_bundle')
        batch_op.drop_column('tls_client_key_encrypted')
        batch_op.drop_column('tls_client_cert')
