"""``python -m services``: run the whole demo platform until Ctrl-C."""

import sys

from services.launcher import main

sys.exit(main())
