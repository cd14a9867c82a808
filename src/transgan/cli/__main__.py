"""``python -m transgan.cli`` (e.g. under torchrun) runs the ``transgan`` command."""

import sys

from transgan.cli.command_line import main

sys.exit(main())
