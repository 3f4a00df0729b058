"""Root conftest: every suite gets the local stand-ins (broker, localstripe, mail sink)."""

pytest_plugins = ["cairn_devstack.pytest_plugin"]
