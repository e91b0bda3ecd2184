"""`magsag runs list`, `runs describe`, `logs` and the `agent` aliases, as a user calls them.

Runs are made by `magsag run` (its worker leaves with it) or detached with no worker, so
every command here reads runs that no worker serves: from visibility, describe,
histories and the run's files.
"""

import json
import signal
import subprocess
from pathlib import Path

import pytest

from magsag.contracts import constants as C
from tests.support.cli import MAGSAG, magsag, magsag_json
from tests.support.gitrepo import make_repo
from tests.support.net import answers, free_port
from tests.support.poll import wait_for

STANDINS = Path(__file__).parents[1] / "runners" / "standins"

# A plan through every path: a retry, a rate-limit wait, a failure with WIP, a conflict,
# a skip; `last` waits on `flaky` (retried after a 1 s backoff) and sleeps, so it ends
# the run and flaky -> last is the critical path.
EVERY_PATH = """
name: history
concurrency: 8
runners:
  sh: {command: [bash, -c, '{prompt}']}
  claude: {kind: claude}
defaults: {runner: sh}
tasks:
  - {name: ok, prompt: "echo ok > ok.txt"}
  - name: flaky
    retries: 1
    prompt: 'echo "flaky attempt $MAGSAG_ATTEMPT"; [ "$MAGSAG_ATTEMPT" = 2 ] && echo f > f.txt'
  - {name: left, prompt: "echo left > README.md"}
  - {name: right, prompt: "sleep 1; echo right > README.md", critical: false}
  - {name: broken, prompt: "echo wip > wip.txt; exit 3", critical: false}
  - {name: after-broken, prompt: "true", depends_on: [broken]}
  - {name: limited, runner: claude, prompt: "write limited.md"}
  - {name: last, prompt: "sleep 3; cat ok.txt f.txt > last.txt", depends_on: [ok, flaky]}
"""

MIXED = """
name: mixed
runners: {sh: {command: [bash, -c, '{prompt}']}}
tasks:
  - {name: fine, prompt: "echo fine > fine.txt"}
  - {name: bad, prompt: "exit 5"}
  - {name: later, prompt: "true", depends_on: [bad]}
"""

GOOD = """
name: good
runners: {sh: {command: [bash, -c, '{prompt}']}}
tasks: [{name: one, prompt: "echo one > one.txt"}]
"""

ROW_KEYS = {
    "run_id", "plan", "repo", "status", "execution_status", "tasks", "cost_usd",
    "started_at", "finished_at", "duration_seconds",
}  # fmt: skip


def _plan(tmp_path: Path, text: str, name: str = "plan.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _standin_env(cli_env: dict, tmp_path: Path, **extra: str) -> dict:
    """The Claude stand-in on PATH; it reports $0.0125 per successful run."""
    return {
        **cli_env,
        "PATH": f"{STANDINS}:{cli_env['PATH']}",
        "STANDIN_WRITE": "{task}.md",
        "STANDIN_ONCE_DIR": str(tmp_path / "once"),
        **extra,
    }


def _rows(*args: str, env: dict) -> list[dict]:
    done = magsag("runs", "list", *args, "--json", env=env)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def _exits_2_with(args: list, expected: str, env: dict) -> None:
    done = magsag(*args, env=env)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip() == f"error: {expected}" or expected in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr


async def test_runs_list_is_newest_first_filtered_and_needs_no_worker(
    tmp_path, repo, cli_env, client
):
    other = make_repo(tmp_path / "other")
    mixed = magsag_json("run", _plan(tmp_path, MIXED, "mixed.yaml"), "--repo", repo, env=cli_env)
    good = magsag_json("run", _plan(tmp_path, GOOD, "good.yaml"), "--repo", repo, env=cli_env)
    assert (mixed["status"], good["status"]) == ("failed", "succeeded")
    # A detached run no worker serves stays running; it is killed from outside below.
    detached = magsag_json(
        "run", _plan(tmp_path, GOOD, "good.yaml"), "--repo", other, "--detach", env=cli_env
    )["run_id"]

    rows = _rows("--repo", repo, env=cli_env)
    assert [r["run_id"] for r in rows] == [good["run_id"], mixed["run_id"]]
    assert all(set(r) == ROW_KEYS for r in rows)
    newest, oldest = rows
    assert oldest["tasks"] == {"succeeded": 1, "failed": 1, "skipped": 1}
    assert (oldest["status"], oldest["plan"], oldest["repo"]) == ("failed", "mixed", str(repo))
    assert newest["tasks"] == {"succeeded": 1} and newest["status"] == "succeeded"
    assert newest["execution_status"] == "completed" and newest["cost_usd"] == 0.0
    assert newest["started_at"] > oldest["started_at"]
    assert newest["finished_at"] and 0 < newest["duration_seconds"] < 60

    everyone = [r["run_id"] for r in _rows("--limit", "1000", env=cli_env)]
    mine = [detached, good["run_id"], mixed["run_id"]]
    assert [r for r in everyone if r in mine] == mine  # newest first across repos
    assert len(_rows("--limit", "1", env=cli_env)) == 1

    failed = _rows("--repo", repo, "--status", "failed", env=cli_env)
    assert [r["run_id"] for r in failed] == [mixed["run_id"]]
    assert _rows("--repo", repo, "--status", "running", env=cli_env) == []

    text = magsag("runs", "list", "--repo", repo, env=cli_env)
    assert text.returncode == 0, text.stderr
    header, first, second = text.stdout.splitlines()
    assert header.split()[:3] == ["RUN", "ID", "PLAN"]
    assert first.startswith(good["run_id"]) and "1 ok" in first and "succeeded" in first
    assert "1 ok, 1 failed, 1 skipped" in second and "$0.0000" in second

    running = _rows("--repo", other, "--status", "running", env=cli_env)
    assert [r["run_id"] for r in running] == [detached]
    assert running[0]["finished_at"] is None and running[0]["tasks"] == {"pending": 1}
    # Killed from outside: its MagsagRunStatus stays "running"; the listing says failed.
    await client.get_workflow_handle(C.plan_workflow_id(detached)).terminate("test")
    assert _rows("--repo", other, "--status", "running", env=cli_env) == []
    [killed] = _rows("--repo", other, "--status", "failed", env=cli_env)
    assert (killed["run_id"], killed["status"]) == (detached, "failed")
    assert killed["execution_status"] == "terminated"

    _exits_2_with(["runs", "list", "--status", "nope"], "--status nope: must be one of", cli_env)
    _exits_2_with(["runs", "list", "--repo", tmp_path / "nowhere"], "no such directory", cli_env)
    _exits_2_with(["runs", "list", "--limit", "0"], "--limit 0: must be at least 1", cli_env)


def test_describe_tells_attempts_waits_wip_conflicts_and_the_path(tmp_path, repo, cli_env):
    env = _standin_env(cli_env, tmp_path, STANDIN_SCENARIO_limited="rate_limit")
    result = magsag_json("run", _plan(tmp_path, EVERY_PATH), "--repo", repo, env=env)
    run_id = result["run_id"]
    assert result["status"] == "succeeded"  # the failures are of non-critical tasks

    view = magsag_json("runs", "describe", run_id, env=cli_env)
    tasks = view["tasks"]
    assert view["status"] == "succeeded" and view["execution_status"] == "completed"
    assert [t["name"] for t in view["plan"]["tasks"]] == list(tasks) == list(result["tasks"])
    assert view["plan"]["tasks"][-1]["depends_on"] == ["ok", "flaky"]
    assert view["usage"]["cost_usd"] == pytest.approx(0.0125)

    # A retried task: the failed attempt, the backoff, the succeeding one.
    first, second = tasks["flaky"]["attempts"]
    assert (first["attempt"], first["outcome"], first["error_type"]) == (1, "failed", "AgentFailed")
    assert "exited with code 1" in first["error"] and first["log_path"].endswith(".attempt-1.log")
    assert (second["attempt"], second["outcome"]) == (2, "succeeded")
    assert second["commit"] == result["tasks"]["flaky"]["commit"]
    assert second["changed_files"] == ["f.txt"]
    [backoff] = tasks["flaky"]["waits"]
    assert backoff["kind"] == "backoff" and backoff["seconds"] == 1.0 and backoff["ended_at"]
    assert "flaky" in tasks["flaky"]["integration"]["merged"]

    # A failed task: its partial work saved as WIP, its worktree removed, never merged.
    broken = tasks["broken"]
    [attempt] = broken["attempts"]
    assert attempt["outcome"] == "failed" and "exited with code 3" in attempt["error"]
    assert broken["wip"]["commit"] == result["tasks"]["broken"]["commit"]
    assert broken["wip"]["changed_files"] == ["wip.txt"] and broken["wip"]["worktree_removed"]
    assert broken["integration"] is None and broken["status"] == "failed"
    assert [e["event"] for e in broken["timeline"]][-2:] == ["wip_saved", "finished"]
    assert tasks["after-broken"]["status"] == "skipped"
    assert tasks["after-broken"]["attempts"] == [] and tasks["after-broken"]["started_at"] is None

    # A conflict: both wrote README.md; the one merged second conflicts.
    assert tasks["right"]["status"] == "conflicted"
    assert tasks["right"]["integration"]["conflicts"] == {"right": ["README.md"]}
    assert "left" in tasks["left"]["integration"]["merged"]
    assert tasks["right"]["timeline"][-1]["event"] == "conflict"

    # A rate limit: the attempt ends, the wait for the reset, the same attempt again.
    limited = tasks["limited"]
    assert [(a["attempt"], a["outcome"]) for a in limited["attempts"]] == [
        (1, "rate_limited"),
        (1, "succeeded"),
    ]
    assert [w["kind"] for w in limited["waits"]] == ["rate_limit"]
    assert limited["usage"]["cost_usd"] == pytest.approx(0.0125)
    # ... which continues the agent's session: its id is in the attempts and the result.
    session = limited["attempts"][0]["session_id"]
    assert session and limited["attempts"][1]["resumed_session"] == session
    sessions = result["tasks"]["limited"]["sessions"]
    assert [(s["session_id"], s["resumed"]) for s in sessions] == [
        (session, False),
        (session, True),
    ]

    # Critical path: flaky (1 s backoff) then last (sleeps 3 s); the parts add up.
    path = view["critical_path"]
    assert path["tasks"] == ["flaky", "last"]
    flaky_step, last_step = path["steps"]
    assert flaky_step["retry_wait_seconds"] >= 1.0 and last_step["agent_seconds"] >= 3.0
    assert last_step["ready_at"] == tasks["flaky"]["done_at"]
    assert sum(path["time"].values()) == pytest.approx(path["seconds"], abs=0.05)
    assert path["seconds"] == pytest.approx(view["duration_seconds"], abs=0.05)
    for step in path["steps"]:
        parts = step["agent_seconds"] + step["retry_wait_seconds"] + step["overhead_seconds"]
        assert parts == pytest.approx(step["running_seconds"], abs=0.01)

    text = magsag("runs", "describe", run_id, env=cli_env)
    assert text.returncode == 0, text.stderr
    for expected in (
        f"run {run_id} succeeded",
        "attempt 1 failed after",
        "AgentFailed: agent exited with code 1",
        "backoff before the next attempt, 1.00s",
        "rate limited: waiting for the reset",
        "partial work saved as WIP commit",
        "merge conflict in README.md",
        "merged into the integration branch",
        "critical path: flaky -> last",
        "where the time went: setup",
        "usage: $0.0125",
    ):
        assert expected in text.stdout, expected
    assert "attempt 1 started again on worker" in text.stdout
    assert f"continuing session {session}" in text.stdout
    _exits_2_with(["runs", "describe", "no-such-run"], "unknown run id no-such-run", cli_env)

    # One task's timeline, and its step of the critical path; no other task's, no plan.
    flaky = magsag("runs", "describe", run_id, "--task", "flaky", env=cli_env)
    assert flaky.returncode == 0, flaky.stderr
    for expected in (
        "attempt 1 failed after",
        "backoff before the next attempt, 1.00s",
        "merged into the integration branch",
        "on the critical path: flaky",
    ):
        assert expected in flaky.stdout, expected
    assert "merge conflict" not in flaky.stdout and "plan:" not in flaky.stdout.splitlines()
    two = magsag_json("runs", "describe", run_id, "--task", "right", "--task", "flaky", env=cli_env)
    assert list(two["tasks"]) == ["right", "flaky"] and two["tasks"]["flaky"] == tasks["flaky"]
    assert two["critical_path"] == path  # read from the path's tasks' histories all the same
    _exits_2_with(
        ["runs", "describe", run_id, "--task", "flaky", "--task", "nope"],
        f"run {run_id} has no task nope",
        cli_env,
    )


def test_logs_print_an_attempts_output_or_its_events(tmp_path, repo, cli_env):
    plan = _plan(
        tmp_path,
        """
runners:
  sh: {command: [bash, -c, '{prompt}']}
  claude: {kind: claude}
tasks:
  - {name: flaky, runner: sh, retries: 1, prompt: 'echo "flaky attempt $MAGSAG_ATTEMPT"; [ "$MAGSAG_ATTEMPT" = 2 ]'}
  - {name: agent, runner: claude, prompt: "write it"}
""",  # noqa: E501 - a plan line
    )
    ran = magsag_json("run", plan, "--repo", repo, env=_standin_env(cli_env, tmp_path))
    run_id = ran["run_id"]

    latest = magsag("logs", run_id, "flaky", env=cli_env)
    assert (latest.returncode, latest.stdout) == (0, "flaky attempt 2\n")
    chosen = magsag("logs", run_id, "flaky", "--attempt", "1", env=cli_env)
    assert (chosen.returncode, chosen.stdout) == (0, "flaky attempt 1\n")

    events = magsag("logs", run_id, "agent", "--events", env=cli_env)
    assert events.returncode == 0, events.stderr
    lines = events.stdout.splitlines()
    assert lines and all("attempt 1" in line for line in lines)
    assert any(" usage " in line and "$0.0125" in line for line in lines), lines
    raw = magsag("logs", run_id, "agent", env=cli_env)
    assert raw.returncode == 0 and '"type":"result"' in raw.stdout

    _exits_2_with(["logs", run_id, "nope"], f"run {run_id} has no task nope", cli_env)
    _exits_2_with(
        ["logs", run_id, "flaky", "--attempt", "3"],
        f"task flaky of run {run_id} has no attempt 3 (attempts: 1, 2)",
        cli_env,
    )
    _exits_2_with(["logs", "no-such-run", "flaky"], "unknown run id no-such-run", cli_env)


@pytest.mark.serial  # `runs describe` must answer within the agent's 3.2 s
def test_logs_follow_a_detached_run_that_a_worker_finishes(tmp_path, repo, cli_env):
    plan = _plan(
        tmp_path,
        "runners: {sh: {command: [bash, -c, '{prompt}']}}\n"
        "tasks: [{name: slow, prompt: 'for i in 1 2 3 4 5 6 7 8; do echo line-$i; sleep 0.4; "
        "done'}]\n",
    )
    run_id = magsag_json("run", plan, "--repo", repo, "--detach", env=cli_env)["run_id"]
    before = magsag_json("runs", "describe", run_id, env=cli_env)  # nothing has run yet
    assert before["status"] == "running" and before["critical_path"]["tasks"] == []
    assert before["tasks"]["slow"]["attempts"] == [] and before["tasks"]["slow"]["timeline"] == []

    follower = subprocess.Popen(
        [MAGSAG, "logs", run_id, "slow", "--follow"],
        env=cli_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    worker = subprocess.Popen([MAGSAG, "worker"], env=cli_env, stderr=subprocess.PIPE, text=True)
    try:
        log = Path(cli_env["MAGSAG_STATE_DIR"]) / "runs" / run_id / "slow.attempt-1.log"
        wait_for(
            lambda: log.exists() and "line-1" in log.read_text(),
            timeout=90,
            what="the agent's first line",
        )
        during = magsag_json("runs", "describe", run_id, env=cli_env)  # a partial timeline
        out, err = follower.communicate(timeout=90)
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=30)
        if follower.poll() is None:
            follower.kill()
    assert follower.returncode == 0, err
    assert out.splitlines() == [f"line-{i}" for i in range(1, 9)]
    [attempt] = during["tasks"]["slow"]["attempts"]
    assert during["status"] == "running" and attempt["outcome"] == "running"
    assert attempt["started_at"] and attempt["finished_at"] is None
    assert magsag_json("status", run_id, env=cli_env)["tasks"]["slow"]["status"] == "succeeded"


def test_agent_plan_and_agent_exec_are_plan_show_and_run(tmp_path, repo, cli_env):
    plan = _plan(tmp_path, GOOD)
    assert magsag_json("agent", "plan", plan, env=cli_env) == magsag_json(
        "plan", "show", plan, env=cli_env
    )
    ran = magsag_json("agent", "exec", plan, "--repo", repo, env=cli_env)
    assert ran["status"] == "succeeded" and ran["tasks"]["one"]["status"] == "succeeded"
    assert "Run a plan on a repository" in magsag("agent", "exec", "--help", env=cli_env).stdout


def test_describe_replays_run_jsonl_when_the_server_has_no_history(tmp_path, repo, cli_env, procs):
    plan = tmp_path / "plan.yaml"
    plan.write_text(
        "runners: {sh: {command: [bash, -c, '{prompt}']}}\n"
        "tasks: [{name: one, prompt: 'echo 1 > one.txt'}, {name: two, prompt: 'exit 3'}]\n"
    )
    run_id = magsag_json("run", plan, "--repo", repo, env=cli_env)["run_id"]
    # Another server (empty history), same state dir: as after retention expired.
    port, ui_port = free_port(), free_port()
    procs.start("server", "--port", str(port), "--ui-port", str(ui_port),
                "--db", str(tmp_path / "other.db"), name="other-server")  # fmt: skip
    wait_for(lambda: answers(port), timeout=60, what="the other server")
    other = {**cli_env, "TEMPORAL_ADDRESS": f"localhost:{port}"}
    done = magsag("runs", "describe", run_id, "--json", env=other)
    assert done.returncode == 0, done.stderr
    story = json.loads(done.stdout)
    assert story["source"] == "run.jsonl" and story["status"] == "failed"
    assert story["tasks"] == {"one": "succeeded", "two": "failed"}
    kinds = [e["event"] for e in story["events"]]
    assert kinds[0] == "run_started" and kinds[-1] == "run_finished"
    assert "integrated" in kinds and "attempt_failed" in kinds
    text = magsag("runs", "describe", run_id, env=other)
    assert "replaying its run.jsonl" in text.stderr and "attempt_failed" in text.stdout
