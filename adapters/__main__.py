"""``python -m adapters`` (and ``accelerate launch -m adapters``) runs the CLI."""

import sys

from adapters.cli import main

sys.exit(main())
