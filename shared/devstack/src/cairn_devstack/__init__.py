"""Local stand-ins for Cairn's infrastructure, used by ``make run`` and the test suites.

- :mod:`cairn_devstack.broker` - memory-only tansu Kafka broker, topic creation;
- :mod:`cairn_devstack.stripe` - localstripe bound to 127.0.0.1 with Cairn's Connect
  extension (accounts, transfers, reversals), idempotency keys, fault injection;
- :mod:`cairn_devstack.mailsink` - SMTP sink with a web page, JSON API and faults;
- :mod:`cairn_devstack.pytest_plugin` - session fixtures running all of the above;
- :mod:`cairn_devstack.testing` - handles on those processes (also for e2e/chaos runs);
- :mod:`cairn_devstack.postgres` - throw-away test databases;
- :mod:`cairn_devstack.procs` - free ports, waiting for ports, stopping children;
- :mod:`cairn_devstack.cli` - the ``cairn-devstack`` command.

See ``shared/devstack/README.md``.
"""
