import sys

from widf_loader.cli import main

sys.exit(main())
