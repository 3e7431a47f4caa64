"""`python -m runner` runs the `entra-bulk` command."""

from __future__ import annotations

from runner.cli import main

if __name__ == "__main__":
    main()
