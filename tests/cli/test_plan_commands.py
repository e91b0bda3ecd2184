"""`magsag plan validate` / `plan show`: good plans pass, bad ones get one clear line."""

import pytest

from tests.support.cli import magsag

RUNNERS = "runners:\n  sh: {command: [bash, -c, '{prompt}']}\n"

BAD_PLANS = {
    "cycle": (
        RUNNERS + "tasks:\n"
        "  - {name: a, prompt: x, depends_on: [b]}\n  - {name: b, prompt: y, depends_on: [a]}\n",
        "dependency cycle: a -> b -> a",
    ),
    "unknown-dependency": (
        RUNNERS + "tasks:\n  - {name: a, prompt: x, depends_on: [ghost]}\n",
        "task 'a': depends on unknown task 'ghost'",
    ),
    "duplicate": (
        RUNNERS + "tasks:\n  - {name: a, prompt: x}\n  - {name: a, prompt: y}\n",
        "task 'a': duplicate task name",
    ),
    "bad-name": (RUNNERS + "tasks:\n  - {name: Bad Name, prompt: x}\n", "task 'Bad Name': name"),
    "unknown-runner": (
        RUNNERS + "tasks:\n  - {name: a, prompt: x, runner: gpt}\n",
        "task 'a': unknown runner 'gpt'",
    ),
    "missing-prompt": (RUNNERS + "tasks:\n  - {name: a}\n", "task 'a': missing prompt"),
    "bad-duration": (
        RUNNERS + "tasks:\n  - {name: a, prompt: x, timeout: soon}\n",
        "task 'a': timeout: bad duration 'soon'",
    ),
    "concurrency": (
        RUNNERS + "concurrency: 0\ntasks:\n  - {name: a, prompt: x}\n",
        "concurrency must be between 1 and 64",
    ),
    "bad-retry": (
        RUNNERS + "tasks:\n  - {name: a, prompt: x, retry: again}\n",
        "task 'a': retry: Input should be 'fresh' or 'continue'",
    ),
    "one-candidate": (
        RUNNERS + "tasks:\n  - {name: a, prompt: x, candidates: 1}\n",
        "task 'a': candidates: between 2 and 10, got 1",
    ),
    "candidate-runner": (
        RUNNERS + "tasks:\n  - {name: a, prompt: x, candidates: [sh, gpt]}\n",
        "task 'a': candidates: unknown runner 'gpt'",
    ),
    "candidates-over-cap": (
        "runners:\n  sh: {command: [bash, -c, '{prompt}'], max_parallel: 2}\n"
        "tasks:\n  - {name: a, prompt: x, candidates: 3}\n",
        "task 'a': 3 candidates of runner 'sh', whose max_parallel is 2",
    ),
    "judge-alone": (
        RUNNERS + "tasks:\n  - {name: a, prompt: x, judge: 'echo 1'}\n",
        "task 'a': `judge:` picks among `candidates:`",
    ),
    "judge-runner": (
        RUNNERS + "tasks:\n  - {name: a, prompt: x, candidates: 2, judge: {runner: gpt}}\n",
        "task 'a': judge: unknown runner 'gpt' (runners: sh)",
    ),
    "judge-runner-alone": (
        RUNNERS + "tasks:\n  - {name: a, prompt: x, judge: {runner: sh, prompt: best}}\n",
        "task 'a': `judge:` picks among `candidates:`",
    ),
    "candidate-name": (
        RUNNERS + "tasks:\n  - {name: a--candidate-1, prompt: x}\n",
        "'--candidate-' is kept for best-of-N candidates",
    ),
    "not-yaml": ("tasks: [unclosed\n", "not valid YAML"),
    "on-conflict-runner": (
        RUNNERS + "on_conflict: {runner: claude}\ntasks:\n  - {name: a, prompt: x}\n",
        "on_conflict: unknown runner 'claude' (runners: sh)",
    ),
    "on-conflict-retries": (
        RUNNERS + "tasks:\n  - {name: a, prompt: x, on_conflict: {runner: sh, retries: -1}}\n",
        "task 'a': on_conflict.retries: Input should be greater than or equal to 0",
    ),
    "notify-event": (
        RUNNERS + "notify: [{url: 'http://h/x', events: [done]}]\ntasks: [{name: a, prompt: x}]\n",
        "notify target #1: unknown event 'done'",
    ),
    "misspelt-key": (
        RUNNERS + "tasks:\n  - {name: a, prompt: x, dependson: [b]}\n",
        "task 'a': unknown key 'dependson'",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_PLANS))
def test_validate_rejects_a_bad_plan_with_one_line(case, tmp_path, cli_env):
    text, expected = BAD_PLANS[case]
    plan = tmp_path / "plan.yaml"
    plan.write_text(text)
    done = magsag("plan", "validate", plan, env=cli_env)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr
    assert lines[0].startswith(f"error: {plan}: ") and expected in lines[0]


def test_validate_reports_a_missing_plan_file(tmp_path, cli_env):
    done = magsag("plan", "validate", tmp_path / "nope.yaml", env=cli_env)
    assert done.returncode == 2 and "plan file not found" in done.stderr


AUTOMATOSX_STYLE = """
name: spec
runners:
  backend: {command: [bash, -c, '{prompt}']}
  quality: {command: [bash, -c, '{prompt}']}
tasks:
  - {name: setup, agent: backend, task: "echo setup"}
  - {name: impl, agent: backend, task: "echo impl", dependencies: [setup]}
  - {name: audit, agent: quality, task: "echo audit", dependencies: [impl], timeout: 2m}
  - {name: test, agent: quality, task: "echo test", dependencies: [impl]}
  - {name: deploy, agent: backend, task: "echo deploy", dependencies: [audit, test]}
"""


def test_show_prints_layers_and_the_critical_path(tmp_path, cli_env):
    plan = tmp_path / "spec.yaml"
    plan.write_text(AUTOMATOSX_STYLE)
    done = magsag("plan", "show", plan, env=cli_env)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "5 tasks" in out
    layer_lines = [line for line in out.splitlines() if line.startswith("layer")]
    assert layer_lines == ["layer 0", "layer 1", "layer 2", "layer 3"]
    # audit's timeout is shorter than test's default, so test is on the critical path.
    assert "critical path: setup -> impl -> test -> deploy" in out


def test_validate_accepts_automatosx_field_names(tmp_path, cli_env):
    plan = tmp_path / "spec.yaml"
    plan.write_text(AUTOMATOSX_STYLE)
    done = magsag("plan", "validate", plan, env=cli_env)
    assert done.returncode == 0 and "with 5 tasks" in done.stdout
