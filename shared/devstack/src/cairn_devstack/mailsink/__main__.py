"""``python -m cairn_devstack.mailsink``: same as ``cairn-devstack mailsink``."""

import sys

from cairn_devstack.cli import main

if __name__ == "__main__":
    sys.exit(main(["mailsink", *sys.argv[1:]]))
