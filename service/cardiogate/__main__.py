"""``python -m cardiogate``."""

from cardiogate.cli import main

raise SystemExit(main())
