"""ix_webhooks_out_of_order: the enabled webhooks Out of order, counted from a small index when
``/metrics`` is scraped instead of reading every webhook (built concurrently on PostgreSQL: the
webhooks keep taking events meanwhile)

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-06 14:20:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0025'
down_revision = '0024'
branch_labels = None
depends_on = None

OUT_OF_ORDER = sa.text('out_of_order AND active')


def upgrade():
    if op.get_bind().dialect.name == 'postgresql':
        with op.get_context().autocommit_block():
            op.create_index('ix_webhooks_out_of_order', 'webhooks', ['id'], unique=False, postgresql_where=OUT_OF_ORDER,
                            postgresql_concurrently=True, if_not_exists=True)
    else:
        op.create_index('ix_webhooks_out_of_order', 'webhooks', ['id'], unique=False, sqlite_where=OUT_OF_ORDER)


def downgrade():
    op.drop_index('ix_webhooks_out_of_order', table_name='webhooks')
