"""`xinchain notice post TEXT`: post a notice and write its receipt."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import httpx
import typer
from xinchain.apps.notice.contract import NAME

from xinchain.cli.common import (
    DEFAULT_API,
    DEFAULT_HOME,
    ApiOption,
    HomeOption,
    console,
    contract_call,
    fail,
)

notice_cli = typer.Typer(no_args_is_help=True, help="Public notices, each with a receipt.")


@notice_cli.command("post")
def post(
    text: Annotated[str, typer.Argument(help="the notice, up to 280 characters")],
    out: Annotated[Path, typer.Option(help="where to write the notice's receipt")],
    home: HomeOption = DEFAULT_HOME,
    api: ApiOption = DEFAULT_API,
    org: Annotated[str | None, typer.Option("--as", help="member org that posts")] = None,
) -> None:
    """Post TEXT as a notice of your org; write its receipt to OUT."""
    result = contract_call(home, api, org, NAME, "post", {"text": text})
    try:
        response = httpx.get(f"{api}/v1/notice/{result['tx_id']}/receipt", timeout=30)
        response.raise_for_status()
    except httpx.HTTPError as exc:
        raise fail(f"{api}: {exc}") from exc
    out.write_text(json.dumps(response.json()), encoding="utf-8")
    console.print(f"posted in block {result['height']}; receipt: {out}")
