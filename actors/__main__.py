"""``python -m actors``: the spinnactors command line."""

import sys

from actors.app.cli import main

sys.exit(main())
