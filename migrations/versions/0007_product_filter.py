"""The webhook list's product filter: ix_webhooks_account_product (which also serves what
ix_webhooks_account_id did)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 03:25:00.000000

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('webhooks', schema=None) as batch_op:
        batch_op.create_index('ix_webhooks_account_product', ['account_id', 'product_id'], unique=False)
        batch_op.drop_index('ix_webhooks_account_id')


def downgrade():
    with op.batch_alter_table('webhooks', schema=None) as batch_op:
        batch_op.create_index('ix_webhooks_account_id', ['account_id'], unique=False)
        batch_op.drop_index('ix_webhooks_account_product')
