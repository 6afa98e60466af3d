import sys

from widf_cli import main

sys.exit(main())
