"""``python -m eval`` runs the ``tanya eval`` commands."""

from eval.cli import main

main()
