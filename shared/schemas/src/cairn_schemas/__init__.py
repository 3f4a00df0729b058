"""cairn_schemas."""
