"""``python -m cairn_devstack.stripe``: same as ``cairn-devstack stripe``."""

import sys

from cairn_devstack.cli import main

if __name__ == "__main__":
    sys.exit(main(["stripe", *sys.argv[1:]]))
