"""``python -m samhandling``: the same as the ``samhandling`` command."""

from samhandling.cli import main

main()
