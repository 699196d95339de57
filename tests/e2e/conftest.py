"""A real browser against a real node, for end-to-end tests of the web console.

Fixtures:

* `browser` (session): Debian's Chromium driven by Playwright. The binary comes from the
  `XINCHAIN_CHROMIUM` environment variable, default /usr/lib/chromium/chromium. That is the
  real binary: /usr/bin/chromium is a shell wrapper that prints noise. Playwright never downloads
  a browser here (`playwright install` is never run). A missing browser fails every test that
  needs it and names `scripts/setup-browser`; it never skips, so a CI box without a browser
  cannot pass unnoticed.
* `console_node` (session): `xinchain up --home TMP --port FREE --validators 1` as a subprocess
  (the entry point installed next to this interpreter), ready once it prints its `ready` line,
  stopped with SIGTERM at the end of the session.
* `desktop_page`, `phone_page`: the console page `/` of `console_node`, each in a fresh browser
  context, on a 1280 x 800 window or an emulated 390 x 844 phone; `open_console(viewport)` opens
  more. Contexts close after the test.
* `phone`: `phone(locale)` opens a fresh browser context emulating that phone (390 x 844,
  touch, three device pixels per CSS pixel) in `locale`, for pages other than the console;
  contexts close after the test.
* `artifacts` (session): a directory for screenshots. It is `XINCHAIN_E2E_ARTIFACTS` when set,
  otherwise `e2e-artifacts` under pytest's tmp directory.

A failing test gets the node's output appended to its report, plus a screenshot of each page it
opened, saved in `artifacts`.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from fake_clock import clock_ahead_env
from ports import free_ports

try:
    from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright
except ImportError as exc:  # fail the collection loudly, with the fix in the message
    raise ImportError(
        "the end-to-end tests need Playwright for Python: .venv/bin/pip install -e '.[dev]' "
        "(never run `playwright install`: the tests drive Debian's Chromium)"
    ) from exc

# The console script installed next to this interpreter: the same entry point users run.
XINCHAIN = Path(sys.executable).parent / "xinchain"
# scripts/setup-browser reads the same variable with the same default.
CHROMIUM_DEFAULT = "/usr/lib/chromium/chromium"
# Flags for a headless browser that runs as root in a container. It must not reach the network
# on its own (no component updates, sync or background fetches). /dev/shm may be tiny there.
CHROMIUM_ARGUMENTS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@dataclass(frozen=True)
class Viewport:
    width: int
    height: int
    phone: bool  # emulate a phone: touch, the page's meta viewport, a dense screen


DESKTOP = Viewport(1280, 800, phone=False)
# An iPhone 12-15 in portrait: 390 x 844 CSS pixels at three device pixels per CSS pixel.
PHONE = Viewport(390, 844, phone=True)
phone_pixel_ratio = 3

# Starting a node takes about a second; a loaded 2-core CI box may take many times that.
ready_timeout_s = 60.0
# A node asked to stop with SIGTERM gets this long before it is killed.
stop_timeout_s = 15.0
# Lines of node output attached to a failing test's report.
report_lines_max = 200
# Playwright's own default is 30 s per action. The page talks only to a loopback node, so 10 s
# is already generous; an action that hangs then fails before the pytest timeout does.
page_timeout_ms = 10_000
expect.set_options(timeout=page_timeout_ms)  # for `expect(...)` assertions; 5 s by default


class NodeStartError(RuntimeError):
    pass


class ConsoleNode:
    """A consortium served by `xinchain up` (one validator unless told), its output kept."""

    def __init__(self, home: Path, port: int, validators: int = 1) -> None:
        self.home = home
        self.port = port
        self.validators = validators  # more than one: nodes on port, port + 1, ...
        self.url = f"http://127.0.0.1:{port}"
        self.chain_id = ""  # from the ready line: "ready: chain <id> genesis <hash> height ..."
        self._process: subprocess.Popen[str] | None = None
        self._output: list[str] = []
        self._output_lock = threading.Lock()
        # Seconds the node's clock runs ahead of the machine's from its next start (only ever
        # raised): see fake_clock.py.
        self.clock_ahead_s = 0

    def now_ms(self) -> int:
        return int(time.time() * 1000) + self.clock_ahead_s * 1000

    def restart_past(self, moment_ms: int) -> None:
        """Restart the node with its clock past `moment_ms`, as if that time had passed."""
        behind_ms = moment_ms + 1_000 - self.now_ms()
        if behind_ms > 0:
            self.clock_ahead_s += -(-behind_ms // 1000)
        self.stop()
        self.start()

    def output(self) -> str:
        with self._output_lock:
            return "".join(self._output[-report_lines_max:])

    def start(self) -> None:
        command = [str(XINCHAIN), "up", "--home", str(self.home), "--port", str(self.port)]
        command += ["--validators", str(self.validators)]
        self._process = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            bufsize=1,
            env={
                **os.environ,
                "PYTHONUNBUFFERED": "1",
                "NO_COLOR": "1",
                **(clock_ahead_env(self.clock_ahead_s) if self.clock_ahead_s else {}),
            },
        )
        ready = threading.Event()
        ready_lines: list[str] = []
        threading.Thread(
            target=self._read_output, args=(ready, ready_lines), daemon=True, name="node-output"
        ).start()
        ready.wait(ready_timeout_s)
        if not ready_lines:
            code = self._process.poll()
            self.stop()
            raise NodeStartError(
                f"`{' '.join(command)}` printed no ready line within "
                f"{ready_timeout_s} s (exit code {code}); output:\n{self.output()}"
            )
        match = re.match(r"ready: chain ([^\s,]+)[ ,]", ready_lines[0])
        assert match, f"a ready line in an unknown format: {ready_lines[0]!r}"
        self.chain_id = match.group(1)

    def _read_output(self, ready: threading.Event, ready_lines: list[str]) -> None:
        assert self._process is not None and self._process.stdout is not None
        for line in self._process.stdout:
            with self._output_lock:
                self._output.append(line)
            if not ready_lines and line.startswith("ready"):
                ready_lines.append(line.strip())
                ready.set()
        ready.set()  # the process closed its output: it will not become ready

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after `stop_timeout_s`."""
        process = self._process
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(stop_timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(stop_timeout_s)


_live_nodes: list[ConsoleNode] = []


@pytest.fixture(scope="session")
def console_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConsoleNode]:
    node = ConsoleNode(tmp_path_factory.mktemp("e2e-node") / "home", free_ports(1)[0])
    _live_nodes.append(node)
    try:
        node.start()
        yield node
    finally:
        node.stop()
        _live_nodes.remove(node)


@pytest.fixture(scope="session")
def chromium_path() -> Path:
    path = Path(os.environ.get("XINCHAIN_CHROMIUM", CHROMIUM_DEFAULT))
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.fail(
            f"no Chromium at {path}: the end-to-end tests need one. Run scripts/setup-browser "
            "(as root it installs Debian's chromium; otherwise it prints the apt command), or "
            "point XINCHAIN_CHROMIUM at a Chromium binary.",
            pytrace=False,
        )
    return path


@pytest.fixture(scope="session")
def browser(chromium_path: Path) -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=chromium_path, headless=True, args=CHROMIUM_ARGUMENTS
        )
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture(scope="session")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    chosen = os.environ.get("XINCHAIN_E2E_ARTIFACTS")
    if chosen is None:
        return tmp_path_factory.mktemp("e2e-artifacts", numbered=False)
    directory = Path(chosen)
    directory.mkdir(parents=True, exist_ok=True)
    return directory


@dataclass
class OpenedPages:
    """The pages one test opened, and where to put their screenshots if the test fails."""

    directory: Path
    pages: list[Page] = field(default_factory=list)


opened_pages_key = pytest.StashKey[OpenedPages]()


@pytest.fixture
def open_console(
    request: pytest.FixtureRequest, browser: Browser, console_node: ConsoleNode, artifacts: Path
) -> Iterator[Callable[[Viewport], Page]]:
    opened = OpenedPages(artifacts)
    request.node.stash[opened_pages_key] = opened
    contexts: list[BrowserContext] = []

    def open_page(viewport: Viewport) -> Page:
        context = browser.new_context(
            viewport={"width": viewport.width, "height": viewport.height},
            is_mobile=viewport.phone,
            has_touch=viewport.phone,
            device_scale_factor=phone_pixel_ratio if viewport.phone else 1,
            accept_downloads=True,
        )
        contexts.append(context)
        context.set_default_timeout(page_timeout_ms)
        page = context.new_page()
        opened.pages.append(page)
        page.goto(f"{console_node.url}/")
        return page

    yield open_page
    for context in contexts:
        context.close()


@pytest.fixture
def desktop_page(open_console: Callable[[Viewport], Page]) -> Page:
    return open_console(DESKTOP)


@pytest.fixture
def phone_page(open_console: Callable[[Viewport], Page]) -> Page:
    return open_console(PHONE)


@pytest.fixture
def phone(browser: Browser) -> Iterator[Callable[[str], BrowserContext]]:
    contexts: list[BrowserContext] = []

    def open_context(locale: str) -> BrowserContext:
        context = browser.new_context(
            locale=locale,
            viewport={"width": PHONE.width, "height": PHONE.height},
            is_mobile=True,
            has_touch=True,
            device_scale_factor=phone_pixel_ratio,
            accept_downloads=True,
        )
        contexts.append(context)
        return context

    yield open_context
    for context in contexts:
        context.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.failed:
        for node in _live_nodes:
            report.sections.append((f"xinchain node output ({node.home})", node.output()))
        opened = item.stash.get(opened_pages_key, None)
        if opened is not None and opened.pages and report.when == "call":
            report.sections.append(("page screenshots", _screenshots(item.name, opened)))
    return report


def _screenshots(test_name: str, opened: OpenedPages) -> str:
    """Saves a full-page screenshot of each page; says where, or why one could not be taken."""
    lines = []
    for index, page in enumerate(opened.pages):
        path = opened.directory / f"{re.sub(r'[^A-Za-z0-9_.-]', '_', test_name)}-{index}.png"
        try:
            page.screenshot(path=path, full_page=True)
        except Exception as exc:  # a report helper: the test has failed already, say why not
            lines.append(f"page {index} ({page.url}): no screenshot: {exc}")
        else:
            lines.append(f"page {index} ({page.url}): {path}")
    return "\n".join(lines)
