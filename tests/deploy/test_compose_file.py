"""docker-compose.yml and the Dockerfile, checked as files: images cannot be pulled or
built here, so their structure is what `make test` can hold them to."""

import re
import shutil
import subprocess

import pytest

from tests.deploy.files import (
    COMPOSE_FILE,
    ROOT,
    compose,
    dockerfile_instructions,
    environment,
    services,
)

LONG_RUNNING = {"postgresql", "temporal", "ui", "worker"}
ONE_SHOT = {"temporal-schema", "temporal-setup"}
# repository:tag, the tag naming a version: not `latest`, not a variable.
PINNED_IMAGE = re.compile(r"^[a-z0-9./-]+:(?!latest$)[0-9][A-Za-z0-9._-]*$")


def test_the_team_stack_has_its_services():
    assert set(services()) == LONG_RUNNING | ONE_SHOT
    assert services()["temporal"]["image"].startswith("temporalio/server:")
    assert services()["ui"]["image"].startswith("temporalio/ui:")
    assert services()["postgresql"]["image"].startswith("postgres:")
    for one_shot in ONE_SHOT:
        assert services()[one_shot]["image"].startswith("temporalio/admin-tools:")


def test_every_image_is_pinned_to_a_version():
    images = {name: s["image"] for name, s in services().items() if "image" in s}
    assert set(images) == set(services()) - {"worker"}  # the worker is built here
    for name, image in images.items():
        assert PINNED_IMAGE.match(image), f"{name}: {image} is not pinned to a version"
    # The server and its admin tools are one release.
    server_version = images["temporal"].split(":")[1]
    assert {images[one_shot].split(":")[1] for one_shot in ONE_SHOT} == {server_version}


def test_long_running_services_restart_and_have_health_checks():
    for name in LONG_RUNNING:
        service = services()[name]
        assert service.get("restart") == "unless-stopped", name
        check = service.get("healthcheck") or {}
        assert check.get("test", [None])[0] in ("CMD", "CMD-SHELL"), name
        assert len(check["test"]) > 1 and not check.get("disable"), name
    for name in ONE_SHOT:  # they finish; restarting them would loop
        assert "restart" not in services()[name], name


def test_every_dependency_waits_for_health_or_completion():
    for name, service in services().items():
        for dependency, condition in (service.get("depends_on") or {}).items():
            expected = (
                "service_completed_successfully" if dependency in ONE_SHOT else "service_healthy"
            )
            assert condition == {"condition": expected}, f"{name} -> {dependency}"
    assert set(services()["temporal"]["depends_on"]) == {"postgresql", "temporal-schema"}
    assert set(services()["worker"]["depends_on"]) == {"temporal", "temporal-setup"}
    assert set(services()["ui"]["depends_on"]) == {"temporal"}


def test_data_lives_on_named_volumes():
    declared = set(compose()["volumes"])
    postgres_mounts = services()["postgresql"]["volumes"]
    assert "postgres-data:/var/lib/postgresql/data" in postgres_mounts
    worker = services()["worker"]
    state_dir = environment(worker)["MAGSAG_STATE_DIR"]
    assert f"worker-state:{state_dir}" in worker["volumes"]
    assert declared == {"postgres-data", "worker-state"}


def test_the_worker_is_built_here_and_reaches_the_temporal_service():
    worker = services()["worker"]
    assert worker["build"]["context"] == "."
    assert (ROOT / worker["build"].get("dockerfile", "Dockerfile")).is_file()
    env = environment(worker)
    assert env["TEMPORAL_ADDRESS"] == "temporal:7233"
    assert env["TEMPORAL_NAMESPACE"] == "${TEMPORAL_NAMESPACE:-default}"
    assert any(port.endswith(":7233") for port in services()["temporal"]["ports"])
    assert "magsag worker" in " ".join(worker["command"])
    # The namespace the setup prepares is the one the worker and the UI use.
    setup = environment(services()["temporal-setup"])
    assert setup["TEMPORAL_NAMESPACE"] == env["TEMPORAL_NAMESPACE"]
    assert environment(services()["ui"])["TEMPORAL_DEFAULT_NAMESPACE"] == env["TEMPORAL_NAMESPACE"]


def test_the_one_shots_run_the_scripts_in_deploy():
    for name, script in (("temporal-schema", "temporal-schema.sh"),
                         ("temporal-setup", "temporal-setup.sh")):  # fmt: skip
        service = services()[name]
        assert "./deploy:/magsag-deploy:ro" in service["volumes"]
        assert service["command"] == [f"/magsag-deploy/{script}"]
        assert (ROOT / "deploy" / script).is_file()


def test_the_dockerfile_builds_a_pinned_non_root_worker_with_git_and_magsag():
    steps = dockerfile_instructions()
    kinds = [kind for kind, _ in steps]
    assert kinds[0] == "FROM"
    assert re.fullmatch(r"python:3\.11\.\d+-slim-\w+", steps[0][1])
    runs = [args for kind, args in steps if kind == "RUN"]
    assert any("apt-get install" in run and " git " in run for run in runs)
    # The package from this source, with the dependencies pinned in pyproject.toml.
    assert any("pyproject.toml" in run and "pip install" in run for run in runs)
    assert any(re.search(r"pip install .*--no-deps /tmp/magsag", run) for run in runs)
    # The agent CLIs only on request.
    assert ("ARG", "INSTALL_AGENTS=false") in steps
    agent_clis = next(args for kind, args in steps if kind == "ARG" and "AGENT_CLIS=" in args)
    for package in ("@anthropic-ai/claude-code", "@openai/codex", "@google/gemini-cli"):
        assert package in agent_clis
    agents = next(run for run in runs if "npm install" in run)
    assert '[ "$INSTALL_AGENTS" = "true" ]' in agents and "$AGENT_CLIS" in agents
    assert "nodejs" in agents
    users = [args for kind, args in steps if kind == "USER"]
    assert users and users[-1] not in ("root", "0")
    assert kinds.index("USER") > max(i for i, kind in enumerate(kinds) if kind == "RUN")
    assert ("CMD", '["magsag", "worker"]') in steps
    assert ("ENV", "MAGSAG_STATE_DIR=/var/lib/magsag PYTHONUNBUFFERED=1") in steps


def test_the_build_context_leaves_out_what_the_image_does_not_need():
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    ignored = {line.strip() for line in lines if line.strip() and not line.startswith("#")}
    assert {".git", ".venv", "tests"} <= ignored
    assert "README.md" not in ignored and "pyproject.toml" not in ignored  # the build needs them


@pytest.mark.skipif(
    not shutil.which("docker-compose"),
    reason="docker-compose is not installed (Debian: apt-get install docker-compose)",
)
def test_docker_compose_accepts_the_file():
    done = subprocess.run(
        ["docker-compose", "-f", str(COMPOSE_FILE), "config", "-q"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
