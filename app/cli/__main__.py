"""``python -m app.cli``: the ``governor`` command."""

import sys

from app.cli import main

sys.exit(main())
