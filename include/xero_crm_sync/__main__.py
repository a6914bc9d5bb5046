import sys

from xero_crm_sync.cli import main

sys.exit(main())
