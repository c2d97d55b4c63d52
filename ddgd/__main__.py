"""`python -m ddgd`: the `ddgd` command, for environments without the console script (and torchrun)."""
import sys

from ddgd.cli import main

sys.exit(main())
