"""webhook_search: the list's search by a part of the name, id or endpoint URL, read from a row
beside each webhook (a trigram index on PostgreSQL), so that the webhook rows that events and
deliveries rewrite carry no trigram index (ix_webhooks_label_trgm goes)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 07:10:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('webhook_search',
    sa.Column('webhook_id', sa.String(length=20), nullable=False),
    sa.Column('account_id', sa.String(length=20), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['webhook_id'], ['webhooks.id'], name=op.f('fk_webhook_search_webhook_id_webhooks'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('webhook_id', name=op.f('pk_webhook_search'))
    )
    # What models.WebhookSearch.text_of writes: name, id and URL, space-separated.
    op.execute(
        "INSERT INTO webhook_search (webhook_id, account_id, text) "
        "SELECT id, account_id, label || ' ' || id || ' ' || external_url FROM webhooks"
    )
    if op.get_bind().dialect.name == 'postgresql':
        op.execute('CREATE EXTENSION IF NOT EXISTS pg_trgm')  # 0006 created it; a restored dump may lack it
        op.create_index(
            'ix_webhook_search_text_trgm', 'webhook_search', ['text'], unique=False,
            postgresql_using='gin', postgresql_ops={'text': 'gin_trgm_ops'},
        )
        op.drop_index('ix_webhooks_label_trgm', table_name='webhooks')


def downgrade():
    if op.get_bind().dialect.name == 'postgresql':
        op.create_index(
            'ix_webhooks_label_trgm', 'webhooks', ['label'], unique=False,
            postgresql_using='gin', postgresql_ops={'label': 'gin_trgm_ops'},
        )
    op.drop_table('webhook_search')
