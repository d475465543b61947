"""Scale: covering and partial indexes for attempt pages, the webhook list's index, room for
in-place updates of webhooks, deletions purged in the background, maintenance leases

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 02:30:00.000000

"""
from alembic import op
import sqlalchemy as sa

import webhookapp.models


# revision identifiers, used by Alembic.
revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

FAILED = sa.text("NOT success")
FILLFACTOR = 70  # models.WEBHOOK_FILLFACTOR when this was written


def upgrade():
    with op.batch_alter_table('attempts', schema=None) as batch_op:
        # A deleted webhook's attempts go in the background (deleted_webhooks), after the webhook.
        batch_op.drop_constraint('fk_attempts_webhook_id_webhooks', type_='foreignkey')
        batch_op.drop_index('ix_attempts_webhook_started')
        batch_op.create_index(
            'ix_attempts_webhook_started_id', ['webhook_id', 'started_at', 'id'], unique=False,
            postgresql_include=['success', 'kind'],
        )
        batch_op.create_index(
            'ix_attempts_webhook_failures', ['webhook_id', 'started_at', 'id'], unique=False,
            postgresql_where=FAILED, sqlite_where=FAILED,
        )
    with op.batch_alter_table('webhooks', schema=None) as batch_op:
        batch_op.create_index('ix_webhooks_account_created', ['account_id', 'created_at', 'id'], unique=False)
    if op.get_bind().dialect.name == 'postgresql':
        # Pages written from now on keep room for in-place (HOT) updates; VACUUM FULL webhooks
        # (or pg_repack) rewrites the existing ones.
        op.execute(f'ALTER TABLE webhooks SET (fillfactor = {FILLFACTOR})')
    op.create_table('deleted_webhooks',
    sa.Column('webhook_id', sa.String(length=20), nullable=False),
    sa.Column('deleted_at', webhookapp.models.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('webhook_id', name=op.f('pk_deleted_webhooks'))
    )
    op.create_table('maintenance_leases',
    sa.Column('name', sa.String(length=40), nullable=False),
    sa.Column('holder', sa.String(length=32), nullable=True),
    sa.Column('expires_at', webhookapp.models.UTCDateTime(), nullable=True),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_maintenance_leases'))
    )


def downgrade():
    op.drop_table('maintenance_leases')
    op.drop_table('deleted_webhooks')
    if op.get_bind().dialect.name == 'postgresql':
        op.execute('ALTER TABLE webhooks RESET (fillfactor)')
    with op.batch_alter_table('webhooks', schema=None) as batch_op:
        batch_op.drop_index('ix_webhooks_account_created')
    # Attempts of webhooks deleted meanwhile would break the foreign key: they go first.
    op.execute('DELETE FROM attempts WHERE webhook_id NOT IN (SELECT id FROM webhooks)')
    with op.batch_alter_table('attempts', schema=None) as batch_op:
        batch_op.drop_index('ix_attempts_webhook_failures', postgresql_where=FAILED, sqlite_where=FAILED)
        batch_op.drop_index('ix_attempts_webhook_started_id', postgresql_include=['success', 'kind'])
        batch_op.create_index('ix_attempts_webhook_started', ['webhook_id', 'started_at'], unique=False)
        batch_op.create_foreign_key(
            'fk_attempts_webhook_id_webhooks', 'webhooks', ['webhook_id'], ['id'], ondelete='CASCADE'
        )
