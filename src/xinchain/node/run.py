"""Run one node in the foreground: REST API and block producer in one asyncio loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import ssl
from collections.abc import Awaitable, Callable, Generator, Sequence

import uvicorn

from xinchain.api.app import create_api
from xinchain.appspec import AppSpec
from xinchain.contracts.governance import node_registry_in_use, registered_node
from xinchain.crypto.tls import PeerIdentity, ca_common_name, tls_context
from xinchain.errors import ConfigError, DiskFull, PeerRefused
from xinchain.node.home import Home
from xinchain.node.limits import (
    ConnectionBudget,
    GuardedConfig,
    NodeLimits,
    connection_budget,
    quiet_accept_errors,
    raise_open_file_limit,
)
from xinchain.node.node import Node
from xinchain.p2p.transport import PeerAddress, Transport
from xinchain.storage import LmdbStore

_log = logging.getLogger(__name__)
# How long to wait for the HTTP server to bind before giving up.
server_start_timeout_s = 30


class _QuietServer(uvicorn.Server):
    """Leaves signals to `run_node`, which stops the producer and the server together."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


async def run_node(
    home: Home,
    name: str,
    port: int,
    apps: Sequence[AppSpec],
    *,
    on_ready: Callable[[Node], None] | None = None,
) -> None:
    running = home.running_node_pid(name)
    if running is not None:
        raise ConfigError(f"node {name} of {home.path} is already running (pid {running})")
    node_config = home.node_config(name)
    limits = node_config.limits if node_config is not None else NodeLimits()
    budget = connection_budget(limits, raise_open_file_limit())
    quiet_accept_errors()
    node = Node(home, name, apps)
    node.connections = budget
    if isinstance(node.store, LmdbStore):
        node.store.space.warn_below_bytes = limits.disk_warn_below_bytes
        node.store.space.stop_below_bytes = limits.disk_stop_below_bytes
        node.store.space.check()  # a node does not start on a disk it would have to stop on
    pid_path = home.node_dir(name) / "node.pid"
    config = GuardedConfig(
        create_api(node),
        guard=budget.api,
        limits=limits,
        backlog=budget.api_backlog,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
        lifespan="off",
        # The transaction stream carries hashes and signatures, which do not compress:
        # deflating them cost CPU for nothing.
        ws_per_message_deflate=False,
    )
    server = _QuietServer(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signal_number in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signal_number, stop.set)
    transport = _transport(home, name, node, budget)
    if transport is not None:
        node.driver.transport = transport
        await transport.start()
    producer = asyncio.create_task(node.driver.run(), name="consensus")
    # The apps' own work (e.g. anchoring scan flags): a failure is logged, never fatal.
    app_tasks = [
        asyncio.create_task(_logged(task(node), spec.name), name=f"{spec.name}-task")
        for spec in apps
        for task in spec.node_tasks
    ]
    app_tasks.append(
        asyncio.create_task(_logged(node.private.run(), "private data"), name="private-data")
    )
    serving = asyncio.create_task(server.serve(), name="api")
    try:
        # Before the API's first answer (the task has not run yet): whoever sees the node answer
        # finds its pid, and the file goes with the node on every way out.
        pid_path.write_text(f"{os.getpid()}\n")
        for _ in range(server_start_timeout_s * 20):
            if server.started or serving.done():
                break
            await asyncio.sleep(0.05)
        if not server.started:
            if serving.done():
                serving.result()
            raise RuntimeError(f"the API did not start on 127.0.0.1:{port}")
        if on_ready is not None:
            on_ready(node)
        stopped = asyncio.create_task(stop.wait())
        watched = {producer, serving, stopped, *app_tasks}
        while True:
            done, _ = await asyncio.wait(watched, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                if task.exception() is not None:
                    raise task.exception()  # type: ignore[misc]
            if done & {producer, serving, stopped}:
                break
            watched -= done  # an app's task that ended: the node goes on
    finally:
        server.should_exit = True
        producer.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await asyncio.wait_for(serving, 5)
        with contextlib.suppress(asyncio.CancelledError):
            await producer
        # After the API stopped serving: an app's task may write what it keeps in memory.
        for task in app_tasks:
            task.cancel()
        await asyncio.gather(*app_tasks, return_exceptions=True)
        if transport is not None:
            await transport.close()
        pid_path.unlink(missing_ok=True)
        node.close()


async def _logged(work: Awaitable[None], app: str) -> None:
    try:
        await work
    except (asyncio.CancelledError, DiskFull):
        raise  # a full disk stops the node, whoever met it
    except Exception:
        _log.exception("a background task of app %s stopped", app)


def _transport(home: Home, name: str, node: Node, budget: ConnectionBudget) -> Transport | None:
    """Mutual-TLS transport to the peers in node.json, or None for a node without peers."""
    config = home.node_config(name)
    if config is None or not config.peers:
        return None
    genesis = node.genesis
    node_dir = home.node_dir(name)
    bundle = genesis.tls_ca_bundle()
    if not bundle:
        raise ConfigError("genesis lists no org TLS CA, so no node can connect")
    validator_orgs = {validator.name: validator.org for validator in genesis.validators}
    org_by_issuer = {ca_common_name(org.id): org.id for org in genesis.orgs if org.tls_ca}
    if not node_registry_in_use(node.app.state):
        _log.warning(
            "this chain registers no nodes (its genesis predates registration): any node a "
            "member org's CA certifies is accepted as a peer; register nodes by governance "
            "(add_node) to refuse the others"
        )

    def accept_peer(peer: PeerIdentity) -> str:
        org = org_by_issuer.get(peer.issuer)
        if org is None:
            raise PeerRefused(f"issuer {peer.issuer!r} is no member org's CA")
        state = node.app.state  # committed state: registrations take effect once committed
        if node_registry_in_use(state):
            record = registered_node(state, peer.name)
            if record is None:
                raise PeerRefused(f"node {peer.name!r} of {org!r} is not registered")
            if record["org"] != org:
                raise PeerRefused(
                    f"node {peer.name!r} is registered to {record['org']!r}, not {org!r}"
                )
            if record["tls_key"] != peer.key_pin:
                raise PeerRefused(
                    f"node {peer.name!r} presents TLS key {peer.key_pin[:16]}..., not the "
                    f"registered {record['tls_key'][:16]}..."
                )
        if peer.name in validator_orgs:
            if validator_orgs[peer.name] != org:
                raise PeerRefused(
                    f"validator {peer.name!r} belongs to {validator_orgs[peer.name]!r}, not {org!r}"
                )
            return peer.name
        return f"{peer.name}@{org}"  # a member's other node: known by its org and its name

    def context(server: bool) -> ssl.SSLContext:
        return tls_context(
            server=server,
            certificate_path=node_dir / "tls.pem",
            key_path=node_dir / "tls.key",
            ca_bundle_pem=bundle,
        )

    return Transport(
        name=name,
        listen_host=config.p2p_host,
        listen_port=config.p2p_port,
        peers=[PeerAddress(n, h, p) for n, h, p in config.peers],
        server_context=context(True),
        client_context=context(False),
        hello={"chain_id": genesis.chain_id, "genesis_hash": node.app.genesis_hash, "name": name},
        accept_peer=accept_peer,
        on_frame=node.driver.on_frame,
        on_connect=node.driver.on_connect,
        guard=budget.p2p,
        backlog=budget.p2p_backlog,
    )
