"""``python -m streamdet`` runs the command line."""

from streamdet.cli import main

raise SystemExit(main())
