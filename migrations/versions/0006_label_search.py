"""ix_webhooks_label_trgm: the list's name search through trigrams (PostgreSQL)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 02:55:00.000000

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade():
    if op.get_bind().dialect.name != 'postgresql':
        return
    op.execute('CREATE EXTENSION IF NOT EXISTS pg_trgm')  # trusted: the database's owner may create it
    op.create_index(
        'ix_webhooks_label_trgm', 'webhooks', ['label'], unique=False,
        postgresql_using='gin', postgresql_ops={'label': 'gin_trgm_ops'},
    )


def downgrade():
    if op.get_bind().dialect.name != 'postgresql':
        return
    op.drop_index('ix_webhooks_label_trgm', table_name='webhooks')
