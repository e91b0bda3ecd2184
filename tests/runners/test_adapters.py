"""The agent adapters against stand-ins that print what the real CLIs print.

Each stand-in (tests/runners/standins/) is run as a real process with the argv its
adapter builds, found on PATH as `claude`, `codex` or `gemini`; its stdout goes through
the adapter's parser line by line, as the agent activity does.
"""

import json
import os
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from pydantic import ValidationError

from magsag.activities.runners import claude, codex, gemini
from magsag.activities.runners.events import (
    AGENT_API_ERROR,
    AGENT_AUTH_ERROR,
    AGENT_BAD_ARGUMENTS,
    AGENT_FAILED,
    AGENT_NO_RESULT,
    RATE_LIMITED,
    Usage,
    classify_error,
    parse_reset,
)
from magsag.contracts.plan import RunnerSpec

STANDINS = Path(__file__).parent / "standins"
ADAPTERS = {"claude": claude, "codex": codex, "gemini": gemini}
NAMES = list(ADAPTERS)
HOSTILE_PROMPT = "say \"hi\" 'there' $(touch pwned) `touch pwned2`; echo $HOME\n-- next line"


def make_spec(options=None, **fields):
    """A RunnerSpec; with options, one carrying them whether or not RunnerSpec has the field."""
    if options is None:
        return RunnerSpec(**fields)
    try:
        return RunnerSpec(**fields, options=options)
    except ValidationError:
        return SimpleNamespace(**RunnerSpec(**fields).model_dump(), options=options)


def standin_env(scenario: str, **extra: str) -> dict[str, str]:
    path = f"{STANDINS}{os.pathsep}{os.environ['PATH']}"
    return {**os.environ, "PATH": path, "STANDIN_SCENARIO": scenario, **extra}


def run_agent(name, scenario, cwd, spec=None, prompt="write out.txt", **env):
    """Run a stand-in to its end; return (parser, events, exit code)."""
    module = ADAPTERS[name]
    spec = spec if spec is not None else make_spec()
    proc = subprocess.run(
        module.build_argv(spec, prompt),
        cwd=cwd,
        env=standin_env(scenario, **env),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )
    parser = module.Parser(spec)
    events = [e for line in proc.stdout.splitlines() for e in parser.feed(line)]
    return parser, events, proc.returncode


# --- every scenario, through a real process -----------------------------------------

SUCCESS = {
    "claude": (Usage(100, 50, 10, 0), 0.0125, False),
    # 800 uncached x 1.25 + 200 cached x 0.125 + 300 out x 10, per 1M tokens.
    "codex": (Usage(800, 300, 200, 0), 0.004025, True),
    "gemini": (Usage(800, 300, 200, 0), 0.004025, True),
}


@pytest.mark.parametrize("name", NAMES)
def test_success_reports_usage_cost_and_the_change(name, tmp_path):
    spec = make_spec(model="gpt-5") if name == "codex" else make_spec()
    parser, events, code = run_agent(name, "success", tmp_path, spec, STANDIN_WRITE="out.txt")
    outcome = parser.outcome(code)
    usage, cost, estimated = SUCCESS[name]
    assert (code, outcome.ok, outcome.kind, outcome.retryable) == (0, True, None, False)
    assert outcome.usage == usage
    assert outcome.cost_usd == pytest.approx(cost)
    assert outcome.cost_estimated is estimated
    assert outcome.session_id and outcome.message == "Done."
    assert (tmp_path / "out.txt").read_text().endswith("for: write out.txt\n")
    kinds = [e["kind"] for e in events]
    assert kinds[0] == "init" and {"tool", "message", "result", "usage"} <= set(kinds)
    assert "raw" not in kinds and parser.saw_result
    assert all(len(e["text"]) <= 300 for e in events)
    json.dumps(events)  # each is a JSONL line of the task's log


ERRORS = {
    "claude": "error_during_execution: Tool execution aborted",
    "codex": "Codex ran out of room in the model's context window",
    "gemini": "Error: [API Error: Request contained an unsupported part]",
}


@pytest.mark.parametrize("name", NAMES)
def test_error_is_a_retryable_agent_failure_with_the_agents_text(name, tmp_path):
    parser, _, code = run_agent(name, "error", tmp_path)
    outcome = parser.outcome(code)
    assert code == 1 and parser.saw_result
    assert (outcome.ok, outcome.kind, outcome.retryable) == (False, AGENT_FAILED, True)
    assert outcome.message.startswith(ERRORS[name])


AUTH_TEXT = {
    "claude": "Not logged in · Please run /login",
    "codex": "unexpected status 401 Unauthorized: Missing bearer",
    "gemini": "gemini exited 41",
}


@pytest.mark.parametrize("name", NAMES)
def test_a_missing_login_is_not_retried(name, tmp_path):
    parser, _, code = run_agent(name, "auth", tmp_path)
    outcome = parser.outcome(code)
    assert code == {"claude": 1, "codex": 1, "gemini": 41}[name]
    assert (outcome.ok, outcome.kind, outcome.retryable) == (False, AGENT_AUTH_ERROR, False)
    assert AUTH_TEXT[name] in outcome.message


@pytest.mark.parametrize("name", NAMES)
def test_a_rate_limit_is_retryable_and_says_when_it_ends(name, tmp_path):
    reset = (int(time.time()) // 60 + 90) * 60  # whole minutes: codex prints "3:28 PM"
    parser, events, code = run_agent(name, "rate_limit", tmp_path, STANDIN_RESET_EPOCH=str(reset))
    outcome = parser.outcome(code)
    assert code == 1
    assert (outcome.ok, outcome.kind, outcome.retryable) == (False, RATE_LIMITED, True)
    expected = datetime.fromtimestamp(reset, UTC)
    slack = timedelta(seconds=5 if name == "gemini" else 0)  # gemini prints "after 1h30m0s"
    assert abs(outcome.rate_limit_reset - expected) <= slack
    if name == "claude":
        assert any(e["kind"] == "rate_limit" and e["status"] == "rejected" for e in events)


@pytest.mark.parametrize("name", NAMES)
def test_a_rate_limit_ending_in_two_seconds(name, tmp_path):
    before = datetime.now(UTC)
    parser, _, code = run_agent(name, "rate_limit", tmp_path)
    outcome = parser.outcome(code)
    assert outcome.kind == RATE_LIMITED
    # codex prints the minute only: its reset may read as up to a minute early.
    low = before - timedelta(seconds=61 if name == "codex" else 0)
    assert low <= outcome.rate_limit_reset <= datetime.now(UTC) + timedelta(seconds=3)


@pytest.mark.parametrize("name", NAMES)
def test_an_exit_without_a_result(name, tmp_path):
    parser, events, code = run_agent(name, "no_result", tmp_path)
    outcome = parser.outcome(code)
    assert code == 0 and not parser.saw_result
    assert (outcome.ok, outcome.kind, outcome.retryable) == (False, AGENT_NO_RESULT, True)
    assert "without" in outcome.message
    assert events[0]["kind"] == "init"


@pytest.mark.parametrize("name", NAMES)
def test_the_result_is_seen_before_a_hanging_agent_exits(name, tmp_path):
    module, spec = ADAPTERS[name], make_spec()
    parser = module.Parser(spec)
    proc = subprocess.Popen(
        module.build_argv(spec, "go"),
        cwd=tmp_path,
        env=standin_env("hang_after_result"),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        for line in proc.stdout:
            parser.feed(line)
            if parser.saw_result:
                break
        assert parser.saw_result and proc.poll() is None
    finally:
        proc.kill()
        proc.wait(timeout=10)
        proc.stdout.close()
    # Killed after its result: the run still succeeded.
    outcome = parser.outcome(proc.returncode)
    assert proc.returncode < 0 and outcome.ok


@pytest.mark.parametrize("name", NAMES)
def test_slow_sleeps_before_the_result(name, tmp_path):
    started = time.monotonic()
    parser, _, code = run_agent(name, "slow", tmp_path, STANDIN_SLEEP="0.4")
    assert time.monotonic() - started >= 0.4
    assert parser.outcome(code).ok


def test_codex_bad_arguments_are_not_retried(tmp_path):
    parser, events, code = run_agent("codex", "bad_args", tmp_path)
    outcome = parser.outcome(code)
    assert (code, events) == (2, [])
    assert (outcome.kind, outcome.retryable) == (AGENT_BAD_ARGUMENTS, False)


@pytest.mark.parametrize(
    ("code", "kind"), [(41, AGENT_AUTH_ERROR), (42, AGENT_BAD_ARGUMENTS), (52, AGENT_BAD_ARGUMENTS)]
)
def test_gemini_exit_codes_without_output(code, kind):
    outcome = gemini.Parser().outcome(code)
    assert outcome.kind == kind and not outcome.retryable and f"exited {code}" in outcome.message


SESSION = "0e3faa5f-6d3c-4b1e-9a55-1f2d3c4b5a69"


def test_only_the_agents_own_no_such_session_answer_is_a_lost_session():
    no_result = claude.Parser().outcome(1)
    bad_input = gemini.Parser().outcome(42)
    assert claude.session_lost(
        SESSION, no_result, f"No conversation found with session ID: {SESSION}\n"
    )
    assert not claude.session_lost(SESSION, no_result, "error: unknown option '--frobnicate'")
    assert gemini.session_lost(
        SESSION, bad_input, f'Error resuming session: Invalid session identifier "{SESSION}".'
    )
    # A real input error, or the text with another exit, is not a lost session.
    assert not gemini.session_lost(SESSION, bad_input, "No input provided via stdin.")
    text = f'Invalid session identifier "{SESSION}"'
    assert not gemini.session_lost(SESSION, gemini.Parser().outcome(1), text)
    # codex starts a new thread for a thread it does not have: another id means lost.
    parser = codex.Parser()
    parser.feed(json.dumps({"type": "thread.started", "thread_id": "another"}))
    assert codex.session_lost(SESSION, parser.outcome(1), "")
    parser = codex.Parser()
    parser.feed(json.dumps({"type": "thread.started", "thread_id": SESSION}))
    assert not codex.session_lost(SESSION, parser.outcome(1), "")


# --- argv ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_the_prompt_is_one_argv_element_and_arrives_intact(name, tmp_path):
    argv = ADAPTERS[name].build_argv(make_spec(), HOSTILE_PROMPT)
    assert argv[-1] == HOSTILE_PROMPT
    assert argv[-2] == ("--prompt" if name == "gemini" else "--")
    run_agent(name, "success", tmp_path, prompt=HOSTILE_PROMPT, STANDIN_WRITE="out.txt")
    written = (tmp_path / "out.txt").read_text()
    assert written == f"written by the {name} stand-in for: {HOSTILE_PROMPT}\n"
    assert not (tmp_path / "pwned").exists() and not (tmp_path / "pwned2").exists()


@pytest.mark.parametrize("name", NAMES)
def test_a_prompt_starting_with_a_dash_stays_the_prompt(name, tmp_path):
    prompt = "--help me\n- item"
    argv = ADAPTERS[name].build_argv(make_spec(), prompt)
    assert argv[-1] == (f"--prompt={prompt}" if name == "gemini" else prompt)
    run_agent(name, "success", tmp_path, prompt=prompt, STANDIN_WRITE="out.txt")
    assert (tmp_path / "out.txt").read_text().endswith(f"for: {prompt}\n")


def test_claude_argv():
    spec = make_spec(
        {
            "permission_mode": "bypassPermissions",
            "allowed_tools": ["Read", "Bash(git log:*)"],
            "max_turns": 30,
        },
        command=["/opt/bin/claude"],
        model="claude-opus-4-5",
        args=["--add-dir", "../lib"],
    )
    assert claude.build_argv(spec, "P") == [
        "/opt/bin/claude",
        "-p",
        "--output-format",
        "stream-json",
        "--verbose",
        "--model",
        "claude-opus-4-5",
        "--permission-mode",
        "bypassPermissions",
        "--allowedTools=Read,Bash(git log:*)",
        "--max-turns",
        "30",
        "--add-dir",
        "../lib",
        "--",
        "P",
    ]
    assert claude.build_argv(make_spec(), "P") == [
        "claude",
        "-p",
        "--output-format",
        "stream-json",
        "--verbose",
        "--permission-mode",
        "acceptEdits",
        "--",
        "P",
    ]
    assert "--permission-mode" not in claude.build_argv(make_spec({"permission_mode": None}), "P")


def test_codex_argv():
    spec = make_spec(
        {"sandbox": "danger-full-access"},
        model="gpt-5-codex",
        args=["-c", "model_reasoning_effort=high"],
    )
    assert codex.build_argv(spec, "P") == [
        "codex",
        "exec",
        "--json",
        "--model",
        "gpt-5-codex",
        "--sandbox",
        "danger-full-access",
        "-c",
        "model_reasoning_effort=high",
        "--",
        "P",
    ]
    assert codex.build_argv(make_spec(command=["/x/codex"]), "P") == [
        "/x/codex",
        "exec",
        "--json",
        "--sandbox",
        "workspace-write",
        "--",
        "P",
    ]


def test_gemini_argv():
    spec = make_spec({"approval_mode": "yolo"}, model="gemini-2.5-flash", args=["--debug"])
    assert gemini.build_argv(spec, "P") == [
        "gemini",
        "--output-format",
        "stream-json",
        "--model",
        "gemini-2.5-flash",
        "--approval-mode",
        "yolo",
        "--debug",
        "--prompt",
        "P",
    ]
    assert "--approval-mode" not in gemini.build_argv(make_spec({"approval_mode": ""}), "P")


@pytest.mark.parametrize(
    ("name", "options"),
    [
        ("claude", {"permision_mode": "plan"}),
        ("codex", {"sandbox": "none"}),
        ("gemini", {"approval_mode": "always"}),
        ("codex", {"prices": {"m": {"input": 1}}}),
        ("claude", {"max_turns": 0}),
        ("claude", {"allowed_tools": 3}),
    ],
)
def test_bad_options_are_refused(name, options):
    with pytest.raises(ValueError):
        ADAPTERS[name].build_argv(make_spec(options), "P")


# --- cost ----------------------------------------------------------------------------

CUSTOM = {"prices": {"my-model": {"input": 2, "cached_input": 1, "output": 4}}}


@pytest.mark.parametrize("name", ["codex", "gemini"])
def test_cost_with_a_custom_price(name, tmp_path):
    spec = make_spec(CUSTOM, model="my-model")
    parser, _, code = run_agent(name, "success", tmp_path, spec)
    outcome = parser.outcome(code)
    # 800 x 2 + 200 x 1 + 300 x 4 per 1M tokens.
    assert outcome.cost_usd == pytest.approx(0.003) and outcome.cost_estimated


def test_no_cost_for_an_unknown_model(tmp_path):
    parser, _, code = run_agent("codex", "success", tmp_path, make_spec(model="mystery-1"))
    outcome = parser.outcome(code)
    assert (outcome.cost_usd, outcome.cost_estimated) == (None, False)


def test_claude_estimates_a_cost_it_was_not_given():
    parser = claude.Parser(make_spec())
    parser.feed(
        '{"type":"system","subtype":"init","session_id":"s","model":"claude-sonnet-4-5-2025"}'
    )
    parser.feed(
        json.dumps(
            {
                "type": "result",
                "subtype": "success",
                "is_error": False,
                "result": "ok",
                "usage": {
                    "input_tokens": 100,
                    "output_tokens": 50,
                    "cache_read_input_tokens": 10,
                    "cache_creation_input_tokens": 20,
                },
            }
        )
    )
    outcome = parser.outcome(0)
    # 100 x 3 + 50 x 15 + 10 x 0.3 + 20 x 3.75 per 1M tokens.
    assert outcome.cost_usd == pytest.approx(0.001128) and outcome.cost_estimated


def test_usage_adds_up():
    assert Usage(1, 2, 3, 4) + Usage(10, 20, 30, 40) == Usage(11, 22, 33, 44)


# --- stream details ------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_lines_that_are_not_json_are_raw_and_long_text_is_cut(name):
    parser = ADAPTERS[name].Parser()
    assert parser.feed("   \n") == []
    assert parser.feed("Warning: something on stdout") == [
        {"kind": "raw", "text": "Warning: something on stdout"}
    ]
    (raw,) = parser.feed("x" * 5000)
    assert len(raw["text"]) == 300


def test_claude_limit_banner_as_a_successful_result_is_a_rate_limit():
    parser = claude.Parser()
    parser.feed(
        json.dumps(
            {
                "type": "result",
                "subtype": "success",
                "is_error": False,
                "result": "Claude AI usage limit reached|1755772800",
            }
        )
    )
    outcome = parser.outcome(0)
    assert outcome.kind == RATE_LIMITED
    assert outcome.rate_limit_reset == datetime.fromtimestamp(1755772800, UTC)


def test_claude_max_turns_and_api_status():
    parser = claude.Parser()
    parser.feed('{"type":"result","subtype":"error_max_turns","is_error":true,"num_turns":5}')
    outcome = parser.outcome(1)
    assert (outcome.kind, outcome.num_turns) == (AGENT_FAILED, 5)
    assert outcome.message.startswith("error_max_turns")
    parser = claude.Parser()
    parser.feed(
        json.dumps(
            {
                "type": "result",
                "subtype": "success",
                "is_error": True,
                "api_error_status": 529,
                "result": "API Error: Repeated 529",
            }
        )
    )
    assert parser.outcome(1).kind == AGENT_API_ERROR


def test_codex_reconnects_then_completes():
    parser = codex.Parser()
    parser.feed('{"type":"error","message":"Reconnecting... 1/5 (stream disconnected)"}')
    parser.feed('{"type":"turn.completed","usage":{"input_tokens":5,"output_tokens":1}}')
    assert parser.outcome(0).ok


def test_gemini_deltas_are_logged_as_one_message():
    parser = gemini.Parser()
    lines = [
        {"type": "message", "role": "assistant", "content": c, "delta": True} for c in ("Hel", "lo")
    ] + [{"type": "result", "status": "success", "stats": {}}]
    events = [e for line in lines for e in parser.feed(json.dumps(line))]
    pairs = [(e["kind"], e["text"]) for e in events]
    assert pairs[:2] == [("message", "Hello"), ("result", "Hello")]


def test_an_outcome_is_json_ready():
    outcome = claude.Parser().outcome(1)
    assert json.loads(json.dumps(outcome.to_dict()))["kind"] == AGENT_NO_RESULT


# --- error texts the real agents print -----------------------------------------------


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("Not logged in · Please run /login", AGENT_AUTH_ERROR),
        ("Invalid API key · Please run /login", AGENT_AUTH_ERROR),
        (
            'API Error: 401 {"type":"error","error":{"type":"authentication_error",'
            '"message":"OAuth token has expired."}}',
            AGENT_AUTH_ERROR,
        ),
        (
            "unexpected status 401 Unauthorized: Missing bearer or basic authentication in "
            "header, url: https://api.openai.com/v1/responses",
            AGENT_AUTH_ERROR,
        ),
        (
            "exceeded retry limit, last status: 401 Unauthorized, request id: 9a5793386e39fede",
            AGENT_AUTH_ERROR,
        ),
        ("Missing environment variable: `OPENAI_API_KEY`.", AGENT_AUTH_ERROR),
        (
            "Please set an Auth method in your settings.json or specify one of the following "
            "environment variables before running: GEMINI_API_KEY",
            AGENT_AUTH_ERROR,
        ),
        (
            "[API Error: API key not valid. Please pass a valid API key. "
            "(Status: INVALID_ARGUMENT)]",
            AGENT_AUTH_ERROR,
        ),
        ("Claude AI usage limit reached|1755772800", RATE_LIMITED),
        ("You've hit your session limit · resets 9am (Europe/Berlin)", RATE_LIMITED),
        ("5-hour limit reached ∙ resets 3pm", RATE_LIMITED),
        (
            "You've hit your usage limit. Upgrade to Pro (https://chatgpt.com/explore/pro), visit "
            "https://chatgpt.com/codex/settings/usage to purchase more credits or try again at "
            "3:28 PM.",
            RATE_LIMITED,
        ),
        ("exceeded retry limit, last status: 429 Too Many Requests", RATE_LIMITED),
        ('API Error: 429 {"type":"error","error":{"type":"rate_limit_error"}}', RATE_LIMITED),
        (
            "[API Error: You have exhausted your capacity on this model. Your quota will reset "
            "after 1h49m8s.]",
            RATE_LIMITED,
        ),
        (
            'API Error: 529 {"type":"error","error":{"type":"overloaded_error",'
            '"message":"Overloaded"}}',
            AGENT_API_ERROR,
        ),
        (
            'API Error: 500 {"type":"error","error":{"type":"api_error",'
            '"message":"Internal server error"}}',
            AGENT_API_ERROR,
        ),
        ("stream disconnected before completion: error sending request for url", AGENT_API_ERROR),
        (
            "We're currently experiencing high demand, which may cause temporary errors.",
            AGENT_API_ERROR,
        ),
        ("API Error: Request timed out.", AGENT_API_ERROR),
        (
            "request to https://oauth2.googleapis.com/token failed, reason: read ECONNRESET",
            AGENT_API_ERROR,
        ),
        (
            "Codex ran out of room in the model's context window. Start a new thread or clear "
            "earlier history before retrying.",
            None,
        ),
        (
            "Reached max session turns for this session. Increase the number of turns by "
            "specifying maxSessionTurns in settings.json.",
            None,
        ),
        ("", None),
    ],
)
def test_error_classification(text, kind):
    assert classify_error(text) == kind


@pytest.fixture
def utc_clock():
    """Texts without a zone are local times: pin the local zone to UTC."""
    old = os.environ.get("TZ")
    os.environ["TZ"] = "UTC"
    time.tzset()
    yield datetime(2026, 3, 10, 14, 0, tzinfo=UTC)
    if old is None:
        del os.environ["TZ"]
    else:
        os.environ["TZ"] = old
    time.tzset()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Claude AI usage limit reached|1755772800", datetime(2025, 8, 21, 10, 40, tzinfo=UTC)),
        (
            "You've hit your session limit · resets 9am (Europe/Berlin)",
            datetime(2026, 3, 11, 8, 0, tzinfo=UTC),
        ),
        ("5-hour limit reached ∙ resets 3pm", datetime(2026, 3, 10, 15, 0, tzinfo=UTC)),
        ("resets 1pm", datetime(2026, 3, 11, 13, 0, tzinfo=UTC)),  # 1pm has passed: tomorrow
        ("Your limit resets at 15:30 UTC", datetime(2026, 3, 10, 15, 30, tzinfo=UTC)),
        (
            "You've hit your usage limit. Try again at 3:28 PM.",
            datetime(2026, 3, 10, 15, 28, tzinfo=UTC),
        ),
        (
            "...purchase more credits or try again at Aug 8th, 2026 12:30 PM.",
            datetime(2026, 8, 8, 12, 30, tzinfo=UTC),
        ),
        ("or try again in 3 days 6 hours 57 minutes.", datetime(2026, 3, 13, 20, 57, tzinfo=UTC)),
        ("Your quota will reset after 1h49m8s.", datetime(2026, 3, 10, 15, 49, 8, tzinfo=UTC)),
        ("Please retry in 23.5s", datetime(2026, 3, 10, 14, 0, 23, 500000, tzinfo=UTC)),
        ("Please retry in 250ms", datetime(2026, 3, 10, 14, 0, 0, 250000, tzinfo=UTC)),
        ("You've hit your weekly limit · resets Tuesday", None),
        ("Try again later.", None),
    ],
)
def test_reset_times(utc_clock, text, expected):
    assert parse_reset(text, now=utc_clock) == expected
