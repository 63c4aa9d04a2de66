"""label suspects found by the last retrain (ADR 0008), city categories added by an admin, and
the review queue's index of flagged predictions by confidence

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30 20:10:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('label_suspects',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('run_id', sa.String(length=64), nullable=False),
    sa.Column('appeal_id', sa.String(length=128), nullable=True),
    sa.Column('source', sa.String(length=255), nullable=True),
    sa.Column('source_row', sa.Integer(), nullable=True),
    sa.Column('field', sa.String(length=16), nullable=False),
    sa.Column('given', sa.String(length=64), nullable=False),
    sa.Column('suggested', sa.String(length=64), nullable=False),
    sa.Column('score', sa.Float(), nullable=False),
    sa.Column('model_version', sa.String(length=64), nullable=True),
    sa.Column('found_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('appeal_id IS NOT NULL OR source IS NOT NULL', name='ck_label_suspects_origin'),
    sa.ForeignKeyConstraint(['appeal_id'], ['appeals.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('label_suspects', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_label_suspects_appeal_id'), ['appeal_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_label_suspects_run_id'), ['run_id'], unique=False)

    op.create_table('city_categories',
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('department', sa.String(length=128), nullable=False),
    sa.Column('added_by', sa.String(length=128), nullable=False),
    sa.Column('added_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('name')
    )
    # partial: only predictions flagged for review, the queue's least confident first
    op.create_index('ix_predictions_review_confidence', 'predictions', ['confidence'], unique=False,
                    sqlite_where=sa.text('needs_review = 1'), postgresql_where=sa.text('needs_review'))


def downgrade() -> None:
    op.drop_index('ix_predictions_review_confidence', table_name='predictions')
    op.drop_table('city_categories')
    with op.batch_alter_table('label_suspects', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_label_suspects_run_id'))
        batch_op.drop_index(batch_op.f('ix_label_suspects_appeal_id'))

    op.drop_table('label_suspects')
