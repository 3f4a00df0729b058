"""cairn_devstack."""
