"""``python -m reqmgmt``: the ``reqmgmt`` command."""

from reqmgmt.cli import main

raise SystemExit(main())
