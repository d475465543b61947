"""ix_audit_account_action_actor: the Activity page narrowed to one action by one actor reads an
index range, and its bounded count an index alone (built concurrently on PostgreSQL: the audit
table keeps taking entries meanwhile)

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-06 07:45:00

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None

COLUMNS = ['account_id', 'action', 'actor_label', 'at', 'id']


def upgrade():
    if op.get_bind().dialect.name == 'postgresql':
        with op.get_context().autocommit_block():
            op.create_index('ix_audit_account_action_actor', 'audit_entries', COLUMNS, unique=False,
                            postgresql_concurrently=True, if_not_exists=True)
    else:
        op.create_index('ix_audit_account_action_actor', 'audit_entries', COLUMNS, unique=False)


def downgrade():
    op.drop_index('ix_audit_account_action_actor', table_name='audit_entries')
