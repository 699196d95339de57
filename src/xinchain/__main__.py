"""`python -m xinchain` is the `xinchain` command."""

from xinchain.cli.main import main

main()
