"""Secrets encrypted at rest, expand step: encrypted copies of the webhooks' JWT secrets beside
the plain columns, filled under the first key of WEBHOOK_ENCRYPTION_KEYS; the secrets typed into
wizard drafts encrypted in place (docs/operations.md, "Upgrading").

The plain columns stay (nullable now) until 0015, so processes of the release before keep
signing while the new one rolls out; the new code reads the encrypted columns and keeps writing
the plain ones too. The rows are filled after the columns are committed, 1,000 per statement,
each its own transaction: no long lock on a table the delivery engine rewrites all the time.
The fill only touches rows not encrypted yet, so an interrupted run can be started again.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06 04:40:00

"""
import json

from alembic import op
import sqlalchemy as sa

from webhookapp.infra import crypto


# revision identifiers, used by Alembic.
revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None

SECRET_LENGTH = 585  # crypto.ciphertext_length(100): a secret of 100 characters, sealed
BATCH = 1000
DRAFTS = sa.table('wizard_drafts', sa.column('id', sa.String), sa.column('data', sa.JSON))


def upgrade():
    present = {column['name'] for column in sa.inspect(op.get_bind()).get_columns('webhooks')}
    if 'jwt_secret_encrypted' not in present:  # absent unless an interrupted fill is started again
        with op.batch_alter_table('webhooks', schema=None) as batch_op:
            batch_op.add_column(sa.Column('jwt_secret_encrypted', sa.String(length=SECRET_LENGTH), nullable=True))
            batch_op.add_column(
                sa.Column('jwt_secret_next_encrypted', sa.String(length=SECRET_LENGTH), nullable=True)
            )
            # New processes insert the encrypted secret first and the plain copy in the same transaction.
            batch_op.alter_column('jwt_secret', existing_type=sa.String(length=100), nullable=True)
    box = crypto.current()  # the app's keys, as `flask db upgrade` runs in it
    with op.get_context().autocommit_block():
        fill_webhooks(op.get_bind(), box)
        seal_drafts(op.get_bind(), box)


def fill_webhooks(bind, box):
    """Encrypt the plain secrets of the rows that have no encrypted copy, in batches."""
    after = ''
    while True:
        rows = bind.execute(
            sa.text(
                'SELECT id, jwt_secret, jwt_secret_next FROM webhooks WHERE jwt_secret_encrypted IS NULL '
                'AND id > :after ORDER BY id LIMIT :batch'
            ),
            {'after': after, 'batch': BATCH},
        ).all()
        if not rows:
            return
        sealed = [
            (
                row.id,
                box.encrypt(row.jwt_secret, context=f'webhooks.jwt_secret:{row.id}'),
                None if row.jwt_secret_next is None
                else box.encrypt(row.jwt_secret_next, context=f'webhooks.jwt_secret_next:{row.id}'),
            )
            for row in rows
        ]
        write_batch(bind, sealed, only_missing=True)
        after = rows[-1].id


def json_rows(dialect, width):
    """A FROM item of the rows of the JSON array of arrays ``:batch``, as columns v0, v1, …: one
    parameter for a whole batch, which both databases read fast."""
    if dialect == 'postgresql':
        picks = ', '.join(f'value->>{k} AS v{k}' for k in range(width))
        return f'(SELECT {picks} FROM json_array_elements(CAST(:batch AS json))) AS batch'
    picks = ', '.join(f"json_extract(value, '$[{k}]') AS v{k}" for k in range(width))
    return f'(SELECT {picks} FROM json_each(:batch)) AS batch'


def write_batch(bind, sealed, *, only_missing):
    """One UPDATE (one short transaction) for a batch of (id, secret, next secret)."""
    condition = ' AND webhooks.jwt_secret_encrypted IS NULL' if only_missing else ''
    bind.execute(
        sa.text(
            'UPDATE webhooks SET jwt_secret_encrypted = batch.v1, jwt_secret_next_encrypted = batch.v2 '
            f'FROM {json_rows(bind.dialect.name, 3)} WHERE webhooks.id = batch.v0{condition}'
        ),
        {'batch': json.dumps(sealed)},
    )


def seal_drafts(bind, box):
    """The secret typed into a wizard draft, encrypted in place (drafts are few: kept two days)."""
    for draft in bind.execute(sa.select(DRAFTS.c.id, DRAFTS.c.data)).all():
        data = dict(draft.data or {})
        plain = data.pop('jwt_secret', None)
        if plain is None:
            continue
        if plain:
            data['jwt_secret_encrypted'] = box.encrypt(plain, context=f'wizard_drafts.jwt_secret:{draft.id}')
        bind.execute(DRAFTS.update().where(DRAFTS.c.id == draft.id).values(data=data))


def open_drafts(bind, box):
    for draft in bind.execute(sa.select(DRAFTS.c.id, DRAFTS.c.data)).all():
        data = dict(draft.data or {})
        stored = data.pop('jwt_secret_encrypted', None)
        if stored is None:
            continue
        data['jwt_secret'] = box.decrypt(stored, context=f'wizard_drafts.jwt_secret:{draft.id}')
        bind.execute(DRAFTS.update().where(DRAFTS.c.id == draft.id).values(data=data))


def downgrade():
    box = crypto.current()
    bind = op.get_bind()
    # The new release writes the plain columns too; a row without one gets it back here.
    for row in bind.execute(
        sa.text('SELECT id, jwt_secret_encrypted, jwt_secret_next_encrypted FROM webhooks WHERE jwt_secret IS NULL')
    ).all():
        bind.execute(
            sa.text('UPDATE webhooks SET jwt_secret = :plain, jwt_secret_next = :next WHERE id = :id'),
            {
                'id': row.id,
                'plain': box.decrypt(row.jwt_secret_encrypted, context=f'webhooks.jwt_secret:{row.id}'),
                'next': None if row.jwt_secret_next_encrypted is None
                else box.decrypt(row.jwt_secret_next_encrypted, context=f'webhooks.jwt_secret_next:{row.id}'),
            },
        )
    open_drafts(bind, box)
    with op.batch_alter_table('webhooks', schema=None) as batch_op:
        batch_op.alter_column('jwt_secret', existing_type=sa.String(length=100), nullable=False)
        batch_op.drop_column('jwt_secret_next_encrypted')
        batch_op.drop_column('jwt_secret_encrypted')
