"""How many of a webhook's events were counted by Trigger Now, so that the Statistics tab can say
what its Events count includes (the events posted, listed on the Events tab, and Trigger Now).

Existing webhooks get the Trigger Now presses the audit trail still holds (it keeps
``WEBHOOK_AUDIT_RETENTION_DAYS``), never more than the events they counted.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-06 07:30:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('webhooks', schema=None) as batch_op:
        batch_op.add_column(sa.Column('trigger_now_count', sa.Integer(), server_default='0', nullable=False))
    # Trigger Now counts an event only on an event webhook (a validation webhook's sends a sample).
    op.execute(sa.text(
        "UPDATE webhooks SET trigger_now_count = ("
        " SELECT CASE WHEN count(*) < webhooks.events_count THEN count(*) ELSE webhooks.events_count END"
        " FROM audit_entries WHERE audit_entries.account_id = webhooks.account_id"
        " AND audit_entries.object_id = webhooks.id AND audit_entries.action = 'webhook.triggered')"
        " WHERE webhooks.type = 'event'"
    ))


def downgrade():
    with op.batch_alter_table('webhooks', schema=None) as batch_op:
        batch_op.drop_column('trigger_now_count')
