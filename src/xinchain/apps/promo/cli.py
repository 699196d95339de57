"""`xinchain promo`: open a first-N-buyers promotion, anchor orders, close it, check a rank."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Annotated

import httpx
import typer

from xinchain.apps.promo.contract import NAME
from xinchain.cli.common import (
    DEFAULT_API,
    DEFAULT_HOME,
    ApiOption,
    HomeOption,
    console,
    contract_call,
    download,
    fail,
)
from xinchain.client.sdk import ApiError, Client

promo_cli = typer.Typer(no_args_is_help=True, help="First-N-buyers promotions ranked by the chain.")


@promo_cli.command("open")
def promo_open(
    promo: Annotated[str, typer.Argument(help="promotion id")],
    title: Annotated[str, typer.Option(help="what the promotion is")],
    gift: Annotated[str, typer.Option(help="the gift the winners get")],
    winners: Annotated[int, typer.Option(help="how many first buyers win")],
    minutes: Annotated[int, typer.Option(help="window length, starting now")] = 60,
    home: HomeOption = DEFAULT_HOME,
    api: ApiOption = DEFAULT_API,
    org: Annotated[str | None, typer.Option("--as", help="the merchant org")] = None,
) -> None:
    """Open a "first N buyers get a gift" promotion as the merchant."""
    starts = int(time.time() * 1000)
    args = {
        "promo": promo,
        "title": title,
        "gift": gift,
        "winners": winners,
        "starts_ms": starts,
        "ends_ms": starts + minutes * 60_000,
    }
    result = contract_call(home, api, org, NAME, "open", args)
    console.print(f"opened {promo} until {args['ends_ms']} ms in block {result['height']}")


@promo_cli.command("order")
def promo_order(
    promo: Annotated[str, typer.Argument(help="promotion id")],
    order_no: Annotated[str, typer.Option(help="the order number")],
    buyer: Annotated[str, typer.Option(help="buyer account, hashed with --salt, never sent")],
    salt: Annotated[str, typer.Option(help="the payment platform's salt for buyer hashes")],
    paid_ms: Annotated[int | None, typer.Option(help="payment time (default: now)")] = None,
    home: HomeOption = DEFAULT_HOME,
    api: ApiOption = DEFAULT_API,
    org: Annotated[str | None, typer.Option("--as", help="the payment platform org")] = None,
) -> None:
    """Anchor one paid order as the payment platform (the buyer only as a salted hash)."""
    order = {
        "order_no": order_no,
        "paid_ms": paid_ms if paid_ms is not None else int(time.time() * 1000),
        "buyer_hash": hashlib.sha256(f"{salt}:{buyer}".encode()).hexdigest(),
        "buyer_mask": mask_buyer(buyer),
    }
    result = contract_call(home, api, org, NAME, "order", {"promo": promo, "orders": [order]})
    for late in result.get("late", []):
        raise fail(f"order {late['order_no']} was not ranked: it {late['reason']}")
    console.print(f"anchored order {order_no} in block {result['height']}")


@promo_cli.command("close")
def promo_close(
    promo: Annotated[str, typer.Argument(help="promotion id")],
    home: HomeOption = DEFAULT_HOME,
    api: ApiOption = DEFAULT_API,
    org: Annotated[str | None, typer.Option("--as", help="any member org")] = None,
) -> None:
    """Close a promotion after its window and grace: the chain ranks the orders and commits the
    list. A large promotion closes in steps, a block each; this repeats close until it commits."""
    result = contract_call(home, api, org, NAME, "close", {"promo": promo})
    while "root" not in result:
        console.print(f"ranked {result['ranked']} of {result['of']} orders")
        result = contract_call(home, api, org, NAME, "close", {"promo": promo})
    console.print(f"closed {promo}: {result['size']} orders, ranking root {result['root']}")


@promo_cli.command("rank")
def promo_rank_command(
    promo: Annotated[str, typer.Argument(help="promotion id")],
    order_no: Annotated[str, typer.Argument(help="the order number")],
    receipt: Annotated[Path | None, typer.Option(help="write the rank receipt here")] = None,
    api: ApiOption = DEFAULT_API,
) -> None:
    """Print an order's rank; with --receipt, save the receipt that proves it."""
    try:
        with Client(api) as client:
            rank = client.promo_rank(promo, order_no)
    except ApiError as exc:
        raise fail(exc.reason) from exc
    except (OSError, httpx.HTTPError) as exc:
        raise fail(f"{api}: {exc}") from exc
    state = "final" if rank["final"] else "provisional"
    won = "wins the gift" if rank["winner"] else "does not win"
    console.print(f"order {order_no} is No. {rank['rank']} of {rank['of']} ({state}); {won}")
    if receipt is not None:
        download(f"{api}/v1/promos/{promo}/rank/{order_no}/receipt", receipt)


def mask_buyer(account: str) -> str:
    """`c***3`: first and last character of the account, the rest hidden."""
    return account[:1] + "***" + account[-1:] if len(account) > 1 else account + "***"
