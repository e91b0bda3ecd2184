"""`magsag` commands handed over to a standing worker's warm process (cli/warm.py): they
behave as in their own process (the user's directory, environment, output, exit code,
Ctrl-C, a kill) without importing magsag again."""

import concurrent.futures
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.cli import MAGSAG, magsag
from tests.support.net import free_port
from tests.support.poll import wait_for
from tests.support.processes import Processes, pid_alive, process_state
from tests.support.runs import bash_plan_file


def served(log: Path, command: str) -> int:
    """How many `magsag <command>` the warm process took (its debug lines)."""
    return log.read_text().count(f"warm CLI: magsag {command}\n")


def start_worker(procs: Processes, env: dict, log_dir: Path, name: str = "worker"):
    """A standing worker whose warm process says what it serves; (its process, its log)."""
    proc = procs.start_with(dict(env, MAGSAG_LOG_LEVEL="DEBUG"), "worker", name=name)
    log = log_dir / f"{name}.log"
    for line in ("warm CLI ready", "polling"):
        wait_for(lambda line=line: line in log.read_text(), timeout=60, what=line)
    return proc, log


def socket_of(env: dict) -> Path:
    """Where the warm process of env's state dir listens."""
    script = "from magsag.cli import warm; print(warm.socket_path(), end='')"
    return Path(subprocess.check_output([sys.executable, "-c", script], env=env, text=True))


def serving(socket: Path) -> list[int]:
    """Live warm processes started for this socket (it is in their argv)."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            argv = cmdline.read_bytes().split(b"\0")
        except OSError:
            continue
        if str(socket).encode() in argv and pid_alive(int(cmdline.parent.name)):
            found.append(int(cmdline.parent.name))
    return found


@pytest.fixture
def worker_log(procs, cli_env, tmp_path) -> Path:
    return start_worker(procs, cli_env, tmp_path)[1]


def cold(env: dict) -> dict:
    return dict(env, MAGSAG_NO_WARM="1")


def test_a_run_started_warm_is_the_users(worker_log, cli_env, repo, tmp_path):
    plans = tmp_path / "plans"
    plans.mkdir()
    bash_plan_file(plans, [{"name": "a", "prompt": "echo a > a.txt"}])
    # A relative plan path: the command runs in the user's directory.
    done = subprocess.run(
        [MAGSAG, "run", "plan.json", "--repo", str(repo), "--json"],
        cwd=plans, env=cli_env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["status"] == "succeeded"
    assert served(worker_log, "run") == 1
    # The worker said it polls: the run found it at once (the command asks in ~0.1 s).
    assert "running one in this process" not in done.stderr


def test_warm_and_cold_commands_answer_alike(worker_log, cli_env, repo, tmp_path):
    plan = bash_plan_file(tmp_path, [{"name": "a", "prompt": "echo a > a.txt"}])
    run_id = json.loads(magsag("run", plan, "--repo", repo, "--json", env=cli_env).stdout)["run_id"]
    nowhere = dict(cli_env, TEMPORAL_ADDRESS=f"127.0.0.1:{free_port()}")
    commands = [
        (("status", run_id, "--json"), cli_env),
        (("status", "no-such-run"), cli_env),
        (("runs", "describe", run_id), cli_env),  # not `runs list`: other tests' runs move
        (("plan", "validate", plan), cli_env),
        (("--help",), cli_env),
        # The user's environment, not the worker's: this server does not exist.
        (("runs", "list"), nowhere),
    ]
    for args, env in commands:
        before = served(worker_log, args[0])
        warm, here = magsag(*args, env=env), magsag(*args, env=cold(env))
        assert (warm.returncode, warm.stdout, warm.stderr) == (
            here.returncode, here.stdout, here.stderr
        ), args  # fmt: skip
        assert served(worker_log, args[0]) == before + 1, args
    assert "cannot reach Temporal at 127.0.0.1:" in magsag("runs", "list", env=nowhere).stderr


@pytest.fixture
def held_run(cli_env, repo, tmp_path) -> str:
    """A run whose one task waits for ever (until the test ends)."""
    plan = bash_plan_file(tmp_path, [{"name": "a", "prompt": "sleep 600"}])
    started = magsag("run", plan, "--repo", repo, "--detach", env=cli_env)
    assert started.returncode == 0, started.stderr
    return started.stdout.strip()


def test_ctrl_c_reaches_a_warm_command(worker_log, cli_env, held_run, tmp_path):
    out = (tmp_path / "watch.log").open("w")
    watch = subprocess.Popen([MAGSAG, "watch", held_run], env=cli_env, stdout=out, stderr=out)
    wait_for(lambda: "▶ a" in (tmp_path / "watch.log").read_text(), what="watch to show the task")
    assert served(worker_log, "watch") == 1
    watch.send_signal(signal.SIGINT)
    assert watch.wait(timeout=30) == 130
    assert (
        (tmp_path / "watch.log")
        .read_text()
        .splitlines()[-1]
        .startswith(f"interrupted: run {held_run} goes on with its worker")
    )


# A process group of its own in the test's session, as a shell starts a job: the kernel
# discards a Ctrl-Z (SIGTSTP) sent to an orphaned process group, which the test's own
# group is when the shell that started the suite in the background has exited.
AS_A_JOB = {"process_group": 0}


def warm_watch(run_id: str, env: dict, worker_log: Path, tmp_path: Path):
    """A warm `magsag watch` of run_id: (its client process, the command's process in the
    warm one, which is the other process on the client's stdout)."""
    log = tmp_path / "watch.log"
    with log.open("w") as out:
        watch = subprocess.Popen(
            [MAGSAG, "watch", run_id], env=env, stdout=out, stderr=out, **AS_A_JOB
        )
    wait_for(lambda: served(worker_log, "watch") == 1, what="the warm process to take watch")
    [command] = wait_for(
        lambda: [pid for pid in writing_to(log) if pid != watch.pid], what="the command"
    )
    return watch, command


def test_ctrl_z_stops_a_warm_command_and_fg_goes_on(worker_log, cli_env, held_run, tmp_path):
    watch, command = warm_watch(held_run, cli_env, worker_log, tmp_path)
    watch.send_signal(signal.SIGTSTP)  # what the terminal sends on Ctrl-Z
    wait_for(
        lambda: process_state(watch.pid) == "T" and process_state(command) == "T",
        what="both stopped",
    )
    watch.send_signal(signal.SIGCONT)  # fg or bg
    wait_for(lambda: process_state(command) not in ("T", None), what="the command going on")
    watch.send_signal(signal.SIGINT)
    assert watch.wait(timeout=30) == 130


def test_ctrl_z_before_the_commands_pid_is_known_stops_both(cli_env, tmp_path):
    # The command has the terminal as soon as the warm process forks it, before its pid
    # reaches the client: a Ctrl-Z then must stop it too, not the client alone. A warm
    # process of the test's own holds the pid back until the Ctrl-Z has come.
    from magsag.cli import warm

    path = socket_of(cli_env)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen(1)
    command = subprocess.Popen(["sleep", "60"])  # stands for the forked command
    client = subprocess.Popen([MAGSAG, "runs", "list"], env=cli_env, **AS_A_JOB)
    try:
        conn, _ = listener.accept()
        request, fds = warm.receive_request(conn)
        for fd in fds:
            os.close(fd)
        assert request["argv"][1:] == ["runs", "list"]
        wait_for(lambda: process_state(client.pid) in ("S", "R"), what="the client waiting")
        client.send_signal(signal.SIGTSTP)
        warm.send_line(conn, {"pid": command.pid})
        wait_for(
            lambda: process_state(client.pid) == "T" and process_state(command.pid) == "T",
            what="both stopped",
        )
        client.send_signal(signal.SIGCONT)
        wait_for(lambda: process_state(command.pid) not in ("T", None), what="both going on")
        warm.send_line(conn, {"exit": 0})
        conn.close()
        assert client.wait(timeout=30) == 0
    finally:
        for proc in (client, command):
            proc.kill()
            proc.wait()
        listener.close()
        path.unlink(missing_ok=True)


def test_a_stopped_command_ends_when_its_stopped_client_is_killed(
    worker_log, cli_env, held_run, tmp_path
):
    # Ctrl-Z, then `kill -9 %1`: the command, stopped, cannot see its client go; the warm
    # process continues it, and it ends as a killed client's command does.
    watch, command = warm_watch(held_run, cli_env, worker_log, tmp_path)
    watch.send_signal(signal.SIGTSTP)
    wait_for(lambda: process_state(command) == "T", what="the command stopped")
    watch.kill()
    watch.wait(timeout=10)
    wait_for(lambda: process_state(command) is None, timeout=30, what="the command to end")


def test_a_stopped_command_outlives_its_worker_and_ends_with_its_client(
    procs, cli_env, held_run, tmp_path
):
    # Ctrl-Z on a warm `watch`, its worker dies, then `kill -9 %1`: the warm process,
    # taking no more commands, stays for the ones it started and continues this one.
    worker, log = start_worker(procs, cli_env, tmp_path)
    socket = socket_of(cli_env)
    watch, command = warm_watch(held_run, cli_env, log, tmp_path)
    try:
        watch.send_signal(signal.SIGTSTP)
        wait_for(lambda: process_state(command) == "T", what="the command stopped")
        Processes.kill_hard(worker)
        wait_for(lambda: not socket.exists(), timeout=30, what="no more commands taken")
        watch.kill()
        watch.wait(timeout=10)
        wait_for(lambda: process_state(command) is None, timeout=30, what="the command to end")
        wait_for(lambda: not serving(socket), timeout=30, what="the warm process to end")
    finally:  # stopped for good when this fails
        with contextlib.suppress(ProcessLookupError):
            os.kill(command, signal.SIGKILL)


def writing_to(path: Path) -> list[int]:
    """Processes whose stdout is path."""
    found = []
    for fd in Path("/proc").glob("[0-9]*/fd/1"):
        try:
            if os.readlink(fd) == str(path):
                found.append(int(fd.parent.parent.name))
        except OSError:
            continue
    return found


def test_a_killed_command_takes_its_warm_process_with_it(worker_log, cli_env, held_run):
    watch = subprocess.Popen(
        [MAGSAG, "watch", held_run], env=cli_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    wait_for(lambda: served(worker_log, "watch") == 1, what="the warm process to take watch")
    watch.kill()
    # The command's process in the warm one held the same stdout: gone too, it closes.
    watch.communicate(timeout=20)
    assert watch.returncode == -signal.SIGKILL


def test_commands_at_once_each_get_their_whole_answer(worker_log, cli_env):
    # The warm process keeps its own end of every client's connection (Ctrl-Z, above):
    # duplicating it must not make the command's end non-blocking (it was: the command
    # then saw its client gone at once and killed itself, printing nothing).
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        done = list(pool.map(lambda _: magsag("runs", "list", "--json", env=cli_env), range(24)))
    assert [(d.returncode, d.stderr) for d in done] == [(0, "")] * 24
    assert all(isinstance(json.loads(d.stdout), list) for d in done)
    assert served(worker_log, "runs") == 24


def test_a_request_without_the_three_descriptors_is_refused(worker_log, cli_env):
    from magsag.cli import warm

    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.connect(str(socket_of(cli_env)))
        warm.send_request(conn, {"stamp": "any", "argv": ["magsag", "status"]}, fds=(0, 1))
        assert next(warm.read_lines(conn)) == {"refused": "a command comes with three descriptors"}
    wait_for(lambda: "refused a request with 2 file descriptors" in worker_log.read_text())
    assert "code changed" not in worker_log.read_text()
    assert magsag("--help", env=cli_env).returncode == 0  # still served
    wait_for(lambda: served(worker_log, "--help") == 1, what="the next command served warm")


def test_commands_run_cold_when_the_warm_process_runs_other_code(cli_env, tmp_path):
    """An edit or an upgrade since the worker started: commands start in their own
    process (with the code installed now), and the warm process says why."""
    serve_other_code = (
        "import os, sys; from magsag.cli import warm, warm_server; "
        "warm.code_stamp = lambda: 'other code'; "
        "sys.argv[1:] = [str(warm.socket_path()), str(os.getppid())]; warm_server.main()"
    )
    log = (tmp_path / "warm.log").open("w")
    env = dict(cli_env, MAGSAG_LOG_LEVEL="INFO")
    server = subprocess.Popen([sys.executable, "-c", serve_other_code], env=env, stderr=log)
    try:
        path = socket_of(env)
        wait_for(lambda: path.exists(), what="the warm process to listen")
        listed = magsag("runs", "list", "--json", env=cli_env)
        assert listed.returncode == 0, listed.stderr
        assert isinstance(json.loads(listed.stdout), list)  # the server's runs, whichever
        assert "commands start cold" in (tmp_path / "warm.log").read_text()
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_the_warm_process_ends_with_its_worker(procs, cli_env, tmp_path):
    socket = socket_of(cli_env)
    worker, _ = start_worker(procs, cli_env, tmp_path, "first")
    assert len(serving(socket)) == 1
    Processes.kill_hard(worker)  # the worker alone, as a crash would
    wait_for(lambda: not serving(socket), timeout=30, what="the warm process to end")
    # The next worker's warm process serves the commands again.
    worker, second = start_worker(procs, cli_env, tmp_path, "second")
    assert magsag("runs", "list", env=cli_env).returncode == 0
    assert served(second, "runs") == 1
    # A worker stopped as usual takes its warm process and its socket along.
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=30) == 0
    wait_for(lambda: not serving(socket) and not socket.exists(), what="the warm process to end")


def test_no_warm_cli_keeps_every_command_in_its_own_process(procs, cli_env, tmp_path):
    procs.start_with(dict(cli_env, MAGSAG_LOG_LEVEL="DEBUG"), "worker", "--no-warm-cli",
                     name="worker")  # fmt: skip
    log = tmp_path / "worker.log"
    wait_for(lambda: "polling" in log.read_text(), timeout=60, what="the worker")
    assert serving(socket_of(cli_env)) == []  # the warm process starts before polling
    assert magsag("runs", "list", env=cli_env).returncode == 0
    assert "warm CLI" not in log.read_text()


def test_a_folder_others_can_open_is_never_used(tmp_path, monkeypatch):
    from magsag.cli import warm

    monkeypatch.setenv("TMPDIR", str(tmp_path))
    assert warm.socket_path().parent == tmp_path / f"magsag-{os.getuid()}"
    (tmp_path / f"magsag-{os.getuid()}").chmod(0o777)
    assert warm.socket_path() is None
