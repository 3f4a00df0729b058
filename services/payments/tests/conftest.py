"""Shared fixtures of the payments tests (the devstack fixtures come from the root
conftest: ``kafka_bootstrap``, ``stripe_server``, ``postgres_admin_url``)."""
