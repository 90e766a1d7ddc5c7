"""`python -m mqim`."""

import sys

from mqim.cli import main

sys.exit(main())
