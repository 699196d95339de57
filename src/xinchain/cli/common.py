"""What every `xinchain` command group shares: output consoles, common options, failing."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

console = Console(highlight=False, soft_wrap=True)
errors = Console(stderr=True, highlight=False, soft_wrap=True)

HomeOption = Annotated[Path, typer.Option("--home", help="consortium home directory")]
ApiOption = Annotated[str, typer.Option("--api", help="REST API of a node")]
DEFAULT_HOME = Path(".xinchain")
DEFAULT_PORT = 7700
DEFAULT_API = f"http://127.0.0.1:{DEFAULT_PORT}"


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print `message` as an error and return the exit to raise (code 1, or 2 for misuse)."""
    errors.print(f"[red]error:[/red] {message}")
    return typer.Exit(code)
