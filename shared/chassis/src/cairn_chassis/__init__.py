"""cairn_chassis."""
