"""Local SMTP sink: catches every email Cairn sends, shows it on a web page, serves it as
JSON to tests, and can be told to fail (4xx, 5xx, dropped connections).

Run it with ``cairn-devstack mailsink --smtp-port 1025 --http-port 8025``.
"""

from cairn_devstack.mailsink.server import (
    DEFAULT_HTTP_PORT,
    DEFAULT_SMTP_PORT,
    MailSinkServer,
    serve,
)

__all__ = ["DEFAULT_HTTP_PORT", "DEFAULT_SMTP_PORT", "MailSinkServer", "serve"]
