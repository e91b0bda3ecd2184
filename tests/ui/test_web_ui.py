"""A finished magsag run as a user sees it in the Temporal Web UI, in headless Chromium.

`magsag server` serves the Web UI; a small plan runs against it; Chromium renders the run's
pages (`--dump-dom` once the single-page app has fetched its data) and the test reads the
DOM: the run's static summary and details, its task workflows, its task summaries, and the
workflow list filtered by magsag's search attributes. Opt-in: `make test-ui` sets
MAGSAG_UI_TESTS=1; set MAGSAG_UI_SCREENSHOTS=<dir> to keep the screenshots it takes.
"""

import json
import os
import shutil
import signal
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import parse_qs, quote, urljoin, urlsplit

import pytest

from magsag.worker.devserver import temporal_binary
from tests.support.cli import MAGSAG, isolated_env, magsag
from tests.support.gitrepo import make_repo
from tests.support.net import answers, free_port
from tests.support.poll import wait_for

pytestmark = [
    pytest.mark.skipif(
        os.environ.get("MAGSAG_UI_TESTS") != "1",
        reason="browser check of the Web UI: run it with `make test-ui` (MAGSAG_UI_TESTS=1)",
    ),
    pytest.mark.timeout(300),
]

CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--hide-scrollbars", "--window-size=1400,1000",
]  # fmt: skip
PLAN = """\
name: ui-check
runners:
  sh: {command: [bash, -c, "{prompt}"]}
tasks:
  - {name: alpha, prompt: "echo a > a.txt"}
  - {name: beta, prompt: "echo b > b.txt"}
  - {name: gamma, prompt: "echo c > c.txt", depends_on: [alpha]}
"""
TASKS = {"alpha": "echo a > a.txt", "beta": "echo b > b.txt", "gamma": "echo c > c.txt"}


class Page(HTMLParser):
    """A rendered DOM: its visible text, its links and its iframes (id -> src)."""

    def __init__(self, dom: str) -> None:
        super().__init__()
        self.links: list[str] = []
        self.iframes: dict[str, str] = {}
        self._text: list[str] = []
        self._hidden = 0
        self.feed(dom)
        self.close()
        self.text = " ".join(" ".join(self._text).split())

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag in ("script", "style"):
            self._hidden += 1
        elif tag == "a" and attrs.get("href"):
            self.links.append(attrs["href"])
        elif tag == "iframe":
            self.iframes[attrs.get("id") or ""] = attrs.get("src") or ""

    def handle_endtag(self, tag):
        if tag in ("script", "style"):
            self._hidden = max(0, self._hidden - 1)

    def handle_data(self, data):
        if not self._hidden:
            self._text.append(data)

    def link(self, prefix: str, suffix: str = "") -> str | None:
        return next((h for h in self.links if h.startswith(prefix) and h.endswith(suffix)), None)

    def iframe_content(self, frame_id: str) -> str | None:
        """The markdown the UI hands to its sandboxed renderer iframe (/render?content=...)."""
        src = self.iframes.get(frame_id)
        return parse_qs(urlsplit(src).query).get("content", [None])[0] if src else None


class Browser:
    """Headless Chromium, one fresh profile per page load, no network beyond localhost."""

    def __init__(self, base_url: str, workdir: Path) -> None:
        exe = next(filter(None, map(shutil.which, ("chromium", "chromium-browser"))), None)
        if exe is None:
            pytest.fail("chromium not found: install it (Debian: apt-get install -y chromium)")
        self.exe, self.base_url, self.workdir, self._loads = exe, base_url, workdir, 0

    def _chromium(self, path: str, *args: str) -> str:
        self._loads += 1
        profile = self.workdir / f"profile-{self._loads}"
        argv = [self.exe, *CHROMIUM_FLAGS, f"--user-data-dir={profile}",
                "--virtual-time-budget=15000", *args, urljoin(self.base_url, path)]  # fmt: skip
        proc = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            start_new_session=True,
        )  # fmt: skip
        try:
            out, err = proc.communicate(timeout=90)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            raise
        finally:
            shutil.rmtree(profile, ignore_errors=True)
        assert proc.returncode == 0, f"chromium failed on {path}: {err[-2000:]}"
        return out

    def page(self, path: str, until, what: str) -> Page:
        """Load `path` until its rendered DOM satisfies `until` (the SPA fetches lazily)."""
        return wait_for(
            lambda: (p := Page(self._chromium(path, "--dump-dom"))) and until(p) and p,
            timeout=120,
            interval=0.5,
            what=f"{what} at {path}",
        )

    def screenshot(self, path: str, png: Path) -> Path:
        self._chromium(path, f"--screenshot={png}")
        assert png.stat().st_size > 10_000, f"blank screenshot of {path}"
        return png


@pytest.fixture
def env(tmp_path) -> dict:
    return isolated_env(tmp_path, "ui")


@pytest.fixture
def background(tmp_path):
    """Starts `magsag ...` in the background; stops them, last started first, with SIGTERM."""
    started: list[subprocess.Popen] = []

    def start(*args: str, env: dict, name: str) -> subprocess.Popen:
        log = (tmp_path / f"{name}.log").open("w")
        proc = subprocess.Popen(
            [MAGSAG, *args], env=env, stdout=log, stderr=log, start_new_session=True
        )
        log.close()
        started.append(proc)
        return proc

    yield start
    for proc in reversed(started):
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


@pytest.fixture
def server(tmp_path, env, background):
    """`magsag server` in the foreground on free ports: (port, ui_port)."""
    port, ui_port = free_port(), free_port()
    db = tmp_path / "server" / "temporal.db"
    args = ("server", "--port", str(port), "--ui-port", str(ui_port), "--db", str(db))
    proc = background(*args, env=env, name="server")
    wait_for(
        lambda: proc.poll() is None and answers(port) and answers(ui_port),
        timeout=90,
        what=f"magsag server on {port} and its Web UI on {ui_port}",
    )
    yield port, ui_port
    # `background` stops it; its Temporal server goes with it.


def _polls(port: int, queue: str, pid: int) -> bool:
    """Whether the worker of process `pid` polls `queue` for workflow tasks."""
    done = subprocess.run(
        [temporal_binary(), "task-queue", "describe", "--address", f"localhost:{port}",
         "--task-queue", queue],
        capture_output=True, text=True,
    )  # fmt: skip
    return done.returncode == 0 and f"{pid}@" in done.stdout


def _keep(png: Path) -> None:
    if target := os.environ.get("MAGSAG_UI_SCREENSHOTS"):
        Path(target).mkdir(parents=True, exist_ok=True)
        shutil.copy(png, Path(target) / png.name)


def test_web_ui_shows_a_finished_run_its_summary_and_its_task_workflows(
    tmp_path, env, server, background
):
    port, ui_port = server
    env = {**env, "TEMPORAL_ADDRESS": f"localhost:{port}"}
    repo = make_repo(tmp_path / "repo")
    plan = tmp_path / "plan.yaml"
    plan.write_text(PLAN)
    done = magsag("run", plan, "--repo", repo, "--json", env=env, timeout=180)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["status"] == "succeeded", result
    run_id, repo_path = result["run_id"], result["repo"]
    wf_id = f"magsag-{run_id}"
    task_ids = {name: f"{wf_id}/{name}" for name in TASKS}
    browser = Browser(f"http://localhost:{ui_port}", tmp_path)
    workflows = "/namespaces/default/workflows"

    # The run's page, by workflow id: the plan workflow, finished. Its tabs' links carry
    # the Temporal run id: /workflows/<workflow id>/<run id>/<tab>.
    run_page = browser.page(
        f"{workflows}/{wf_id}",
        until=lambda p: "PlanWorkflow" in p.text and p.link(f"{workflows}/{wf_id}/", "/memo"),
        what="the run's workflow page",
    )
    assert wf_id in run_page.text and "Completed" in run_page.text
    run_base = run_page.link(f"{workflows}/{wf_id}/", "/memo").removesuffix("/memo")

    # Its task workflows, on the Relationships tab: one child per task, all completed.
    rel = browser.page(
        f"{run_base}/relationships",
        until=lambda p: all(t in p.text for t in task_ids.values()),
        what="the run's task workflows",
    )
    assert rel.text.count("TaskWorkflow") >= len(TASKS)
    child = rel.link(f"{workflows}/{quote(task_ids['alpha'], safe='')}/")
    assert child, rel.links

    # The workflow list finds the run by repository; the run's tree by its root.
    by_repo = browser.page(
        f"{workflows}?query={quote(f'MagsagRepo={json.dumps(repo_path)}', safe='')}",
        until=lambda p: wf_id in p.text,
        what="the run in the list filtered by MagsagRepo",
    )
    assert "PlanWorkflow" in by_repo.text
    tree = browser.page(
        f"{workflows}?query={quote(f'RootWorkflowId={json.dumps(wf_id)}', safe='')}",
        until=lambda p: all(t in p.text for t in task_ids.values()),
        what="the run's task workflows in the list filtered by RootWorkflowId",
    )
    assert wf_id in tree.text

    # The run's own page needs no worker (above). Its User Metadata tab also asks the
    # workflow for its "Current Details" by a query: with no worker polling, that query
    # hangs until its timeout (~30 s, more than once within Chromium's virtual time), so a
    # worker answers it here, as the team's `magsag worker` does.
    worker = background("worker", env=env, name="worker")
    wait_for(
        lambda: _polls(port, env["MAGSAG_TASK_QUEUE"], worker.pid),
        timeout=60,
        what="the worker to poll",
    )

    # Its static summary and details: the UI shows them on the User Metadata tab, each
    # rendered as markdown in a sandboxed iframe whose document is /render?content=...
    meta = browser.page(
        f"{run_base}/user-metadata",
        until=lambda p: p.iframe_content("user-metadata-summary"),
        what="the run's summary",
    )
    summary = meta.iframe_content("user-metadata-summary")
    assert summary == f"magsag run of plan 'ui-check' on {repo_path}"
    details = meta.iframe_content("user-metadata-details")
    assert all(f"- {name} (sh)" in details for name in TASKS), details
    rendered = browser.page(
        meta.iframes["user-metadata-summary"],
        until=lambda p: "magsag run of plan" in p.text,
        what="the rendered summary",
    )
    assert "ui-check" in rendered.text and repo_path in rendered.text

    # A task's own page carries its static summary: "<task>: <prompt>".
    child_meta = browser.page(
        child.rsplit("/", 1)[0] + "/user-metadata",
        until=lambda p: p.iframe_content("user-metadata-summary"),
        what="the task's summary",
    )
    assert child_meta.iframe_content("user-metadata-summary") == f"alpha: {TASKS['alpha']}"

    for name, tab in (("run", "relationships"), ("summary", "user-metadata")):
        _keep(browser.screenshot(f"{run_base}/{tab}", tmp_path / f"magsag-ui-{name}.png"))
