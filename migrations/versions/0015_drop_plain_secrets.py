"""Secrets encrypted at rest, contract step: the plain JWT secret columns go. Run once no process
of the release before 0011 is left (docs/operations.md, "Upgrading").

First every row is made to agree with its plain column, which was the truth until now: a webhook
made, or a secret changed, by a process of the release before during the roll has an encrypted
copy that is missing or stale, and gets a fresh one. Then the plain columns are dropped. Their
bytes (and the drafts' plain secrets, rewritten by 0011) stay in dead space until
``VACUUM FULL webhooks, wizard_drafts`` (PostgreSQL) or ``VACUUM`` and
``PRAGMA wal_checkpoint(TRUNCATE)`` (SQLite) rewrite it, and in every backup taken before.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06 04:40:00

"""
from alembic import op
import sqlalchemy as sa

from webhookapp.infra import crypto


# revision identifiers, used by Alembic.
revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None

SECRET_LENGTH = 585
BATCH = 1000


def upgrade():
    box = crypto.current()
    with op.get_context().autocommit_block():
        reconcile(op.get_bind(), box)
    with op.batch_alter_table('webhooks', schema=None) as batch_op:
        batch_op.alter_column('jwt_secret_encrypted', existing_type=sa.String(length=SECRET_LENGTH), nullable=False)
        batch_op.drop_column('jwt_secret_next')
        batch_op.drop_column('jwt_secret')


def _agrees(box, stored, plain, context):
    if stored is None or plain is None:
        return stored is None and plain is None
    try:
        return box.decrypt(stored, context=context) == plain
    except crypto.CryptoError:
        return False


def reconcile(bind, box):
    """Encrypt again, in batches, every secret whose encrypted copy is missing or differs from the plain one."""
    after = ''
    while True:
        rows = bind.execute(
            sa.text(
                'SELECT id, jwt_secret, jwt_secret_next, jwt_secret_encrypted, jwt_secret_next_encrypted '
                'FROM webhooks WHERE id > :after ORDER BY id LIMIT :batch'
            ),
            {'after': after, 'batch': BATCH},
        ).all()
        if not rows:
            return
        for row in rows:
            current = f'webhooks.jwt_secret:{row.id}'
            following = f'webhooks.jwt_secret_next:{row.id}'
            if _agrees(box, row.jwt_secret_encrypted, row.jwt_secret, current) and _agrees(
                box, row.jwt_secret_next_encrypted, row.jwt_secret_next, following
            ):
                continue
            bind.execute(
                sa.text('UPDATE webhooks SET jwt_secret_encrypted = :secret, jwt_secret_next_encrypted = :next '
                        'WHERE id = :id'),
                {
                    'id': row.id,
                    'secret': box.encrypt(row.jwt_secret, context=current),
                    'next': None if row.jwt_secret_next is None else box.encrypt(row.jwt_secret_next, context=following),
                },
            )
        after = rows[-1].id


def downgrade():
    with op.batch_alter_table('webhooks', schema=None) as batch_op:
        batch_op.add_column(sa.Column('jwt_secret', sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column('jwt_secret_next', sa.String(length=100), nullable=True))
        batch_op.alter_column('jwt_secret_encrypted', existing_type=sa.String(length=SECRET_LENGTH), nullable=True)
    box = crypto.current()
    bind = op.get_bind()
    for row in bind.execute(sa.text('SELECT id, jwt_secret_encrypted, jwt_secret_next_encrypted FROM webhooks')).all():
        bind.execute(
            sa.text('UPDATE webhooks SET jwt_secret = :plain, jwt_secret_next = :next WHERE id = :id'),
            {
                'id': row.id,
                'plain': box.decrypt(row.jwt_secret_encrypted, context=f'webhooks.jwt_secret:{row.id}'),
                'next': None if row.jwt_secret_next_encrypted is None
                else box.decrypt(row.jwt_secret_next_encrypted, context=f'webhooks.jwt_secret_next:{row.id}'),
            },
        )
