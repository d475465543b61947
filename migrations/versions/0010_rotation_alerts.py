"""Staged secret rotation (a next secret beside the current one) and alerts (whether the
account was told a webhook is out of order, and an index of the webhooks whose alert is due)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 06:38:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

ALERT_DUE = sa.text("out_of_order <> alerted_out_of_order")


def upgrade():
    with op.batch_alter_table('webhooks', schema=None) as batch_op:
        batch_op.add_column(sa.Column('jwt_secret_next', sa.String(length=100), nullable=True))
        # Existing rows: none was told anything yet. Webhooks already out of order get their
        # alert on the first scan after the upgrade.
        batch_op.add_column(
            sa.Column('alerted_out_of_order', sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.create_index(
            'ix_webhooks_alert_due', ['id'], unique=False, postgresql_where=ALERT_DUE, sqlite_where=ALERT_DUE
        )


def downgrade():
    with op.batch_alter_table('webhooks', schema=None) as batch_op:
        batch_op.drop_index('ix_webhooks_alert_due')
        batch_op.drop_column('alerted_out_of_order')
        batch_op.drop_column('jwt_secret_next')
