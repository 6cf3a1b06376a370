"""``python -m datastage`` runs the command-line interface."""

from datastage.cli import main

if __name__ == "__main__":
    main()
