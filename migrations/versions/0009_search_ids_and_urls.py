"""ix_webhooks_id_trgm, ix_webhooks_url_trgm: the list's search by a part of the id or the
endpoint URL through trigrams (PostgreSQL)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 07:10:00.000000

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade():
    if op.get_bind().dialect.name != 'postgresql':
        return
    op.execute('CREATE EXTENSION IF NOT EXISTS pg_trgm')  # 0006 created it; a restored dump may lack it
    op.create_index(
        'ix_webhooks_id_trgm', 'webhooks', ['id'], unique=False,
        postgresql_using='gin', postgresql_ops={'id': 'gin_trgm_ops'},
    )
    op.create_index(
        'ix_webhooks_url_trgm', 'webhooks', ['external_url'], unique=False,
        postgresql_using='gin', postgresql_ops={'external_url': 'gin_trgm_ops'},
    )


def downgrade():
    if op.get_bind().dialect.name != 'postgresql':
        return
    op.drop_index('ix_webhooks_url_trgm', table_name='webhooks')
    op.drop_index('ix_webhooks_id_trgm', table_name='webhooks')
