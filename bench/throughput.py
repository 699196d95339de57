"""Throughput bench: xinchain against etcd and PostgreSQL under one open-loop workload.

    .venv/bin/python bench/throughput.py [--systems xinchain4,etcd,postgres] [--duration-s 10]
        [--clients 8192] [--rates 250,500,...] [--quick]

Starts each selected system on loopback in turn (bench/README.md has the details):

    xinchain4   4 validators (`bench/xinchain_driver.py`), one notary anchor a transaction
    xinchain1   1 validator, the same
    batched     and any other system the driver lists in its SYSTEMS
    etcd        a 3-member etcd cluster (Debian's etcd-server), default durability
    postgres    a PostgreSQL server (Debian's postgresql), synchronous_commit=on, fsync=on

and drives it with the same workload: one 200-byte notary record an op, `--clients`
connections, open loop at rising rates (`--duration-s` each) until saturation and one step
more. Debian's etcd-server and postgresql are installed with apt-get when missing (as root).

Reported per system and rate step: achieved throughput, p50/p99/max commit latency (from an
op's scheduled time), CPU seconds per 1,000 committed ops of the servers and of the load
generator; per system the sustained rate; and the ratios xinchain/etcd and
xinchain/PostgreSQL. Then two xinchain phases (bench/xinchain_phases.py): batched notarization
(documents a second, transactions of 1,000 documents, 4 and 1 validators) and a long run
(1,000,000 transactions through 4 validators, then each validator's RSS and the disk bytes a
transaction). Prints a table per system and a JSON summary line, and writes the summary
and a plot of latency against offered load to bench/results/throughput-<timestamp>.json and
.png. Never part of CI.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import json
import math
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from baselines import (
    RATES_DEFAULT,
    EtcdSystem,
    PostgresSystem,
    RateResult,
    SweepResult,
    System,
    achieved_share_min,
    ensure_debian_packages,
    error_share_max,
    event_loop_name,
    latency_p99_s_max,
    record_bytes,
    run_async,
    sweep,
    warm_share,
)

# The provenance bench's helpers: one way to find the commit and to unwind on SIGTERM.
from provenance import _git_commit as git_commit
from provenance import interruptible
from xinchain_phases import batched_notarization, long_run

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_DIR = BENCH_DIR / "results"
REPO = BENCH_DIR.parent

SYSTEMS_DEFAULT = "xinchain4,xinchain1,etcd,postgres"
BASELINES = ("etcd", "postgres")
# Ops in flight at most: a 10,000 tx/s chain whose blocks commit in about half a second holds
# about 5,000 (etcd and PostgreSQL share at most 64 connections however many there are).
clients_default = 8192
duration_s_default = 10.0
# --quick: short steps, every other rate; a smoke test of the whole command, not a figure.
quick_duration_s = 2.0
QUICK_RATES = (500, 2000, 5000, 10000, 20000)

# Batched notarization: transactions pushed, documents in each. The long run's transactions.
batched_transactions = 1_000
batched_documents = 1_000
long_run_transactions = 1_000_000

# A system's factory: (its working directory, the number of clients) -> the system.
Factory = Callable[[Path, int], System]


def _xinchain_factories() -> dict[str, Factory]:
    """The xinchain systems, from `bench/xinchain_driver.py`: xinchain1 and xinchain4, and any
    more it lists in its `SYSTEMS` mapping (name -> factory of (workdir, clients))."""
    driver = importlib.import_module("xinchain_driver")

    def validators(count: int) -> Factory:
        def start(workdir: Path, clients: int) -> System:
            system: System = driver.XinchainSystem(count, workdir)
            return system

        return start

    factories = {f"xinchain{count}": validators(count) for count in (1, 4)}
    factories.update(getattr(driver, "SYSTEMS", {}))
    return factories


def factories_for(names: Sequence[str]) -> dict[str, Factory]:
    factories: dict[str, Factory] = {
        "etcd": lambda workdir, clients: EtcdSystem(workdir, clients),
        "postgres": lambda workdir, clients: PostgresSystem(workdir, clients),
    }
    if any(name not in factories for name in names):
        factories.update(_xinchain_factories())  # imported only when asked for
    unknown = [name for name in names if name not in factories]
    if unknown:
        raise SystemExit(
            f"unknown system(s) {', '.join(unknown)}; expected some of {', '.join(factories)}"
        )
    return factories


# --- running one system ------------------------------------------------------------------------


def progress(system: str) -> Callable[[RateResult], None]:
    def report(step: RateResult) -> None:
        print(
            f"  {system}: offered {step.offered_per_s:,.0f}/s -> {step.achieved_per_s:,.0f}/s, "
            f"p50 {step.latency_p50_ms:,.1f} ms, p99 {step.latency_p99_ms:,.1f} ms, "
            f"server CPU {step.server_cpu_s_per_1000:.2f} s/1k, driver "
            f"{step.driver_cores:.2f} cores, others {step.other_cores:.2f} cores"
            + (" (saturated)" if step.saturated else ""),
            file=sys.stderr,
            flush=True,
        )

    return report


async def drive(
    system: System, rates: Sequence[float], duration_s: float, clients: int
) -> tuple[SweepResult, int | None]:
    """The sweep, and then what the system holds (if it can count it): every acknowledged op
    should be there."""
    try:
        result = await sweep(system, rates, duration_s, clients, on_step=progress(system.name))
        count = getattr(system, "stored", None)
        return result, (await count() if count is not None else None)
    finally:
        await system.close()


def run_system(
    name: str, factory: Factory, workdir: Path, args: argparse.Namespace
) -> dict[str, Any]:
    load = os.getloadavg()[0]
    print(f"{name}: starting (load average {load:.2f})", file=sys.stderr, flush=True)
    began = time.perf_counter()
    with factory(workdir / name, args.clients) as system:
        print(
            f"{name}: ready in {time.perf_counter() - began:.1f} s, server pids "
            f"{system.server_pids()[:8]}",
            file=sys.stderr,
            flush=True,
        )
        result, stored = run_async(drive(system, args.rates, args.duration_s, args.clients))
        data_bytes = system.data_bytes()
    print(f"{name}: stopped ({result.stopped})", file=sys.stderr, flush=True)
    if stored is not None and stored < result.acknowledged:
        print(
            f"{name}: ! {result.acknowledged} ops acknowledged but {stored} stored",
            file=sys.stderr,
            flush=True,
        )
    best = result.sustained_step
    summary = result.as_dict()
    summary.update(
        system=name,  # as selected (a driver's system may call itself otherwise)
        load_average_before=round(load, 2),
        stored=stored,
        data_mb=round(data_bytes / 1e6, 1),
        sustained_latency_p50_ms=_round(best.latency_p50_ms) if best else None,
        sustained_latency_p99_ms=_round(best.latency_p99_ms) if best else None,
        sustained_server_cpu_s_per_1000=_round(best.server_cpu_s_per_1000) if best else None,
        sustained_driver_cpu_s_per_1000=_round(best.driver_cpu_s_per_1000) if best else None,
    )
    return summary


def _round(value: float | None, digits: int = 3) -> float | None:
    if value is None or math.isnan(value):
        return None
    return round(value, digits)


# --- comparing ---------------------------------------------------------------------------------


def _unsaturated(summary: dict[str, Any]) -> dict[float, dict[str, Any]]:
    return {step["offered_per_s"]: step for step in summary["steps"] if not step["saturated"]}


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or denominator is None or denominator == 0:
        return None
    return round(numerator / denominator, 4)


def compare(subject: dict[str, Any], baseline: dict[str, Any]) -> dict[str, Any]:
    """subject/baseline: sustained rates, p99 latencies at the highest offered rate both ran
    unsaturated (the common rate), and server CPU seconds per 1,000 ops at their sustained
    rates."""
    subject_steps, baseline_steps = _unsaturated(subject), _unsaturated(baseline)
    both = sorted(set(subject_steps) & set(baseline_steps))
    common = both[-1] if both else None

    def at_common(key: str) -> list[float | None]:
        if common is None:
            return [None, None]
        return [subject_steps[common][key], baseline_steps[common][key]]

    p99s, cpus = at_common("latency_p99_ms"), at_common("server_cpu_s_per_1000")
    return {
        "sustained_per_s": _ratio(subject["sustained_per_s"], baseline["sustained_per_s"]),
        "common_rate_per_s": common,
        "latency_p99_ms_at_common_rate": p99s,
        "latency_p99_at_common_rate": _ratio(*p99s),
        "server_cpu_s_per_1000_at_common_rate": cpus,
        "server_cpu_at_common_rate": _ratio(*cpus),
        "server_cpu_s_per_1000_at_sustained": _ratio(
            subject["sustained_server_cpu_s_per_1000"],
            baseline["sustained_server_cpu_s_per_1000"],
        ),
    }


def ratios(systems: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Every system that is not a baseline (the xinchain ones) against each baseline run."""
    return {
        f"{subject}/{baseline}": compare(systems[subject], systems[baseline])
        for subject in systems
        if subject not in BASELINES
        for baseline in BASELINES
        if baseline in systems
    }


# --- reporting ---------------------------------------------------------------------------------


def _figure(value: Any, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return f"{value:,}"


STEP_COLUMNS = (
    ("offered/s", "offered_per_s", 0),
    ("achieved/s", "achieved_per_s", 0),
    ("p50 ms", "latency_p50_ms", 1),
    ("p99 ms", "latency_p99_ms", 1),
    ("max ms", "latency_max_ms", 1),
    ("late", "late", 0),
    ("unissued", "unissued", 0),
    ("errors", "errors", 0),
    ("server s/1k", "server_cpu_s_per_1000", 3),
    ("driver s/1k", "driver_cpu_s_per_1000", 3),
    ("driver cores", "driver_cores", 2),
    ("other cores", "other_cores", 2),
)


def system_table(summary: dict[str, Any]) -> list[str]:
    rows = [[title for title, _, _ in STEP_COLUMNS]]
    for step in summary["steps"]:
        row = [_figure(step[key], digits) for _, key, digits in STEP_COLUMNS]
        row[0] += " *" if step["saturated"] else ""
        rows.append(row)
    widths = [max(len(row[column]) for row in rows) for column in range(len(STEP_COLUMNS))]
    lines = [f"{summary['system']} ({summary['stopped']}; * saturated)"]
    lines += [
        "  " + "  ".join(cell.rjust(width) for cell, width in zip(row, widths, strict=True))
        for row in rows
    ]
    lines.append(
        f"  sustained {_figure(summary['sustained_per_s'], 0)} tx/s (offered "
        f"{_figure(summary['sustained_offered_per_s'], 0)}/s): p50 "
        f"{_figure(summary['sustained_latency_p50_ms'])} ms, p99 "
        f"{_figure(summary['sustained_latency_p99_ms'])} ms, server CPU "
        f"{_figure(summary['sustained_server_cpu_s_per_1000'], 3)} s / 1,000 tx, driver CPU "
        f"{_figure(summary['sustained_driver_cpu_s_per_1000'], 3)} s / 1,000 tx"
        + ("" if summary["saturated"] else " (a lower bound: no step saturated it)")
    )
    lines.append(
        f"  highest unsaturated {_figure(summary['unsaturated_max_per_s'], 0)} tx/s; "
        f"acknowledged {summary['acknowledged']:,} ops (warm-up included), stored "
        f"{_figure(summary['stored'])}; data on disk {summary['data_mb']} MB"
    )
    return lines


def report(summary: dict[str, Any]) -> str:
    lines = [
        f"throughput bench ({summary['commit']}, {summary['timestamp']}): "
        f"{summary['workload']['clients']} clients, {summary['workload']['duration_s']:g} s "
        f"steps, {summary['workload']['record_bytes']}-byte records, "
        f"{summary['machine']['cpus']} cores, {summary['machine']['event_loop']}"
    ]
    for system in summary["systems"].values():
        lines += ["", *system_table(system)]
    if summary["ratios"]:
        lines += [
            "",
            "ratios, xinchain over the baseline (sustained tx/s; p99 and server CPU a tx at the "
            "highest rate both ran unsaturated, and CPU at their sustained rates)",
        ]
    for batched in summary.get("batched", []):
        lines.append(
            f"batched notarization, {batched['validators']} validator(s): "
            f"{batched['documents_per_s']:,} documents/s ({batched['documents']:,} documents in "
            f"{batched['transactions']} transactions of {batched['batch']:,}, "
            f"{batched['seconds']:g} s)"
        )
    if "long_run" in summary:
        run = summary["long_run"]
        lines.append(
            f"long run: {run['transactions']:,} transactions through {run['validators']} "
            f"validators in {run['seconds']:g} s; RSS MB after {run['rss_mb_after']} (before "
            f"{run['rss_mb_before']}); {run['disk_bytes_per_tx']:,} disk bytes a transaction "
            f"({run['data_mb']:g} MB a validator)"
        )
    for pair, ratio in summary["ratios"].items():
        p99s = ratio["latency_p99_ms_at_common_rate"]
        lines.append(
            f"  {pair}: sustained x{_figure(ratio['sustained_per_s'], 3)}, p99 at "
            f"{_figure(ratio['common_rate_per_s'], 0)}/s "
            f"x{_figure(ratio['latency_p99_at_common_rate'], 3)} "
            f"({_figure(p99s[0])} vs {_figure(p99s[1])} ms); server CPU a tx at that rate "
            f"x{_figure(ratio['server_cpu_at_common_rate'], 3)}, at the sustained rates "
            f"x{_figure(ratio['server_cpu_s_per_1000_at_sustained'], 3)}"
        )
    return "\n".join(lines)


def plot(summary: dict[str, Any], path: Path) -> None:
    """p50 (dashed) and p99 (solid) commit latency against offered load, one colour a system;
    saturated steps hollow."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as pyplot
    from matplotlib import ticker

    figure, axes = pyplot.subplots(figsize=(9, 6), dpi=120)
    colours = pyplot.rcParams["axes.prop_cycle"].by_key()["color"]
    for index, system in enumerate(summary["systems"].values()):
        colour = colours[index % len(colours)]
        steps = [step for step in system["steps"] if step["latency_p99_ms"] is not None]
        offered = [step["offered_per_s"] for step in steps]
        for key, style, label in (("latency_p99_ms", "-", "p99"), ("latency_p50_ms", "--", "p50")):
            axes.plot(
                offered,
                [step[key] for step in steps],
                style,
                color=colour,
                label=f"{system['system']} {label}",
            )
            for step in steps:
                axes.plot(
                    step["offered_per_s"],
                    step[key],
                    "o",
                    color=colour,
                    markerfacecolor="none" if step["saturated"] else colour,
                )
    axes.axhline(
        latency_p99_s_max * 1000,
        color="grey",
        linewidth=0.8,
        linestyle=":",
        label=f"p99 limit of the sustained rate ({latency_p99_s_max:g} s)",
    )
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.xaxis.set_major_formatter(ticker.FuncFormatter(lambda value, _: f"{value:,.0f}"))
    axes.xaxis.set_minor_formatter(ticker.NullFormatter())
    ran = {
        step["offered_per_s"] for system in summary["systems"].values() for step in system["steps"]
    }
    axes.set_xticks(sorted(ran))
    axes.tick_params(axis="x", labelrotation=45, labelsize=8)
    axes.set_xlabel("offered load (ops/s, open loop)")
    axes.set_ylabel("commit latency (ms)")
    workload = summary["workload"]
    axes.set_title(
        f"{workload['record_bytes']}-byte notary records, {workload['clients']} clients, "
        f"{workload['duration_s']:g} s a step; hollow: saturated\n"
        f"{summary['machine']['cpus']} cores, {summary['commit']}, {summary['timestamp']}",
        fontsize=9,
    )
    axes.grid(True, which="both", linewidth=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path)
    pyplot.close(figure)


# --- the run -----------------------------------------------------------------------------------


def run(args: argparse.Namespace, stamp: str) -> dict[str, Any]:
    factories = factories_for(args.systems)
    needed = [
        package
        for name, package in (("etcd", "etcd-server"), ("postgres", "postgresql"))
        if name in args.systems
    ]
    ensure_debian_packages(needed)
    workdir = Path(tempfile.mkdtemp(prefix="xinchain-bench-throughput-"))
    systems: dict[str, dict[str, Any]] = {}
    extra: dict[str, Any] = {}
    try:
        for name in args.systems:
            systems[name] = run_system(name, factories[name], workdir, args)
        if args.batched:
            extra["batched"] = [
                batched_notarization(validators, args.batched, batched_documents)
                for validators in (4, 1)
            ]
        if args.long_run:
            print(f"long run: {args.long_run:,} transactions through 4 validators", flush=True)
            extra["long_run"] = long_run(4, args.long_run)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return {
        **extra,
        "bench": "throughput",
        "timestamp": stamp,
        "commit": git_commit(),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "event_loop": event_loop_name(),
        },
        "workload": {
            "record_bytes": record_bytes,
            "clients": args.clients,
            "duration_s": args.duration_s,
            "rates": list(args.rates),
            "quick": args.quick,
            "saturated_when": (
                f"achieved < {achieved_share_min:.0%} of offered, or p99 > "
                f"{latency_p99_s_max:g} s, or errors > {error_share_max:.1%} of issued"
            ),
            "sustained": (
                f"highest achieved throughput of a step with p99 <= {latency_p99_s_max:g} s "
                f"and errors <= {error_share_max:.1%}"
            ),
            "achieved_window": f"commits from {warm_share:.0%} of a step to its end",
        },
        "systems": systems,
        "ratios": ratios(systems),
    }


def _rates(text: str) -> tuple[float, ...]:
    rates = tuple(float(part) for part in text.split(",") if part.strip())
    if not rates or any(rate <= 0 for rate in rates):
        raise argparse.ArgumentTypeError("expected positive rates, comma separated")
    return rates


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--systems",
        type=lambda text: [name.strip() for name in text.split(",") if name.strip()],
        default=SYSTEMS_DEFAULT.split(","),
        help=f"comma-separated systems, run in this order (default {SYSTEMS_DEFAULT})",
    )
    parser.add_argument("--duration-s", type=float, help="seconds a rate step (default 10)")
    parser.add_argument(
        "--clients",
        type=int,
        default=clients_default,
        help=(
            f"ops in flight at most (default {clients_default}); etcd and PostgreSQL "
            "share at most 64 connections among them, xinchain one stream per validator"
        ),
    )
    parser.add_argument("--rates", type=_rates, help="offered rates, ops/s, comma separated")
    parser.add_argument(
        "--batched",
        type=int,
        default=batched_transactions,
        help=f"batched notarization: transactions of {batched_documents:,} documents pushed "
        f"to 4 and to 1 validator (default {batched_transactions}; 0 skips it)",
    )
    parser.add_argument(
        "--long-run",
        type=int,
        default=long_run_transactions,
        help="transactions through 4 validators before reading their memory and disk "
        f"(default {long_run_transactions:,}; 0 skips it)",
    )
    parser.add_argument(
        "--quick", action="store_true", help="2-s steps at fewer rates (a smoke test)"
    )
    args = parser.parse_args()
    if args.duration_s is None:
        args.duration_s = quick_duration_s if args.quick else duration_s_default
    if args.rates is None:
        args.rates = QUICK_RATES if args.quick else RATES_DEFAULT
    if args.quick:  # the phases too, shortened, unless asked for explicitly
        if args.batched == batched_transactions:
            args.batched = 30
        if args.long_run == long_run_transactions:
            args.long_run = 20_000
    args.rates = tuple(sorted(set(args.rates)))  # rising, as the sweep's stopping rule needs
    if args.duration_s <= 0 or args.clients < 1 or not args.systems:
        parser.error("--duration-s and --clients must be positive, --systems not empty")
    now = dt.datetime.now(dt.UTC)
    stamp = now.strftime("%Y%m%dT%H%M%SZ")
    try:
        with interruptible():
            summary = run(args, now.isoformat(timespec="seconds"))
    except KeyboardInterrupt:
        print("interrupted; the servers are stopped", file=sys.stderr)
        return 130
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    json_path = RESULTS_DIR / f"throughput-{stamp}.json"
    png_path = RESULTS_DIR / f"throughput-{stamp}.png"
    summary["plot"] = str(png_path.relative_to(REPO))
    plot(summary, png_path)
    print(report(summary))
    json_path.write_text(json.dumps(summary, ensure_ascii=False, indent=2, sort_keys=True) + "\n")
    print(f"written {json_path.relative_to(REPO)} and {png_path.relative_to(REPO)}")
    print(json.dumps(summary, ensure_ascii=False, sort_keys=True))
    lost = [
        name
        for name, system in summary["systems"].items()
        if system["stored"] is not None and system["stored"] < system["acknowledged"]
    ]
    return 1 if lost else 0


if __name__ == "__main__":
    sys.exit(main())
