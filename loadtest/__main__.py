"""`python -m loadtest run [options]`: see loadtest/cli.py."""

from loadtest.cli import main

raise SystemExit(main())
