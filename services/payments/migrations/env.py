"""Alembic environment of the payments service (run by ``cairn-payments migrate``)."""

from cairn_chassis.migrations import run_migrations_online
from cairn_payments.adapters.tables import metadata

run_migrations_online(metadata)
