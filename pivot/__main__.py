"""``python -m pivot``: the same as the ``pivot`` command (see pivot/cli.py)."""
import sys

from .cli import main

sys.exit(main())
