"""``python -m pivot``: the same as the ``pivot`` command (see pivot/apps/cli.py)."""
import sys

from .apps.cli import main

sys.exit(main())
