"""`python -m excelnet`: the same as the `excelnet` command."""

from excelnet.cli import main

raise SystemExit(main())
