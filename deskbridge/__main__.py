"""``python -m deskbridge``: the operator commands (see deskbridge.cli)."""

import sys

from deskbridge.cli import main

sys.exit(main())
