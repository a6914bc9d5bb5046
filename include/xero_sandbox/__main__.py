"""`python -m xero_sandbox ...`: see xero_sandbox.cli."""

import sys

from xero_sandbox.cli import main

sys.exit(main())
