"""drop ix_predictions_appeal_id: uq_prediction_version (appeal_id, model_version) serves
the same lookups, and every stored prediction paid for both

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 08:45:00
"""
from alembic import op


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('predictions', schema=None) as batch_op:
        batch_op.drop_index('ix_predictions_appeal_id')


def downgrade() -> None:
    with op.batch_alter_table('predictions', schema=None) as batch_op:
        batch_op.create_index('ix_predictions_appeal_id', ['appeal_id'], unique=False)
