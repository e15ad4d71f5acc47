"""`python -m daydream …` is the `daydream` command."""

import sys

from daydream.cli import main

sys.exit(main())
