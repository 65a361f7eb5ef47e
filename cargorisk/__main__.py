import sys

from cargorisk.cli import main

sys.exit(main())
