"""``python -m simlens.cli``: the ``simlens`` command."""

import sys

from simlens.cli import main

sys.exit(main())
