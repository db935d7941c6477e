"""``python -m facekeypoints``: the same as the ``facekeypoints`` command."""

from .cli import main

raise SystemExit(main())
