"""Trace context: the event's and the pending trigger's W3C traceparent

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-06 10:30:00

"""

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0020'
down_revision = '0019'
branch_labels = None
depends_on = None


def upgrade():
    # Nullable without a default: on PostgreSQL a change of the catalogue alone, whatever the size.
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("traceparent", sa.String(length=55), nullable=True))
    with op.batch_alter_table("webhooks", schema=None) as batch_op:
        batch_op.add_column(sa.Column("trigger_traceparent", sa.String(length=55), nullable=True))


def downgrade():
    with op.batch_alter_table("webhooks", schema=None) as batch_op:
        batch_op.drop_column("trigger_traceparent")
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_column("traceparent")
