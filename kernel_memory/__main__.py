"""`python -m kernel_memory` runs the command line."""

from kernel_memory.cli import main

raise SystemExit(main())
