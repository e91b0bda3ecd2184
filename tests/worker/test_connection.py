"""What magsag connects to comes from Temporal's environment configuration, as for every
Temporal tool: a profile in a TOML file, overridden by TEMPORAL_* variables."""

from pathlib import Path

import pytest
from temporalio.service import TLSConfig

from magsag.worker import connection

PROFILES = """
[profile.default]
address = "127.0.0.1:1"

[profile.team]
address = "temporal.team.example:7233"
namespace = "agents"

[profile.cloud]
address = "agents.a1b2c.tmprl.cloud:7233"
namespace = "agents.a1b2c"
api_key = "key-from-the-profile"

[profile.mtls]
address = "agents.a1b2c.tmprl.cloud:7233"
namespace = "agents.a1b2c"
[profile.mtls.tls]
client_cert_path = "{cert}"
client_key_path = "{key}"
"""


@pytest.fixture
def profiles(tmp_path, monkeypatch):
    """A config file with several profiles, and an environment with no TEMPORAL_* else."""
    (tmp_path / "client.pem").write_text("CERT\n")
    (tmp_path / "client.key").write_text("KEY\n")
    path = tmp_path / "temporal.toml"
    path.write_text(PROFILES.format(cert=tmp_path / "client.pem", key=tmp_path / "client.key"))
    for name in ("ADDRESS", "NAMESPACE", "API_KEY", "TLS", "PROFILE", "CONFIG_FILE"):
        monkeypatch.delenv(f"TEMPORAL_{name}", raising=False)
    monkeypatch.setenv("TEMPORAL_CONFIG_FILE", str(path))
    return monkeypatch


def test_a_profile_alone_selects_the_address_and_the_namespace(profiles):
    profiles.setenv("TEMPORAL_PROFILE", "team")
    assert connection.connect_config() == {
        "target_host": "temporal.team.example:7233",
        "namespace": "agents",
    }
    assert connection.is_configured()  # so `run` starts no embedded server


def test_without_temporal_profile_the_default_profile_is_used(profiles):
    assert connection.connect_config()["target_host"] == "127.0.0.1:1"
    assert connection.connect_config()["namespace"] == "default"


def test_an_api_key_profile_connects_over_tls(profiles):
    profiles.setenv("TEMPORAL_PROFILE", "cloud")
    config = connection.connect_config()
    assert config["api_key"] == "key-from-the-profile"
    assert config["tls"] is True
    assert config["namespace"] == "agents.a1b2c"


def test_an_mtls_profile_gives_the_client_certificate_and_key(profiles):
    profiles.setenv("TEMPORAL_PROFILE", "mtls")
    tls = connection.connect_config()["tls"]
    assert isinstance(tls, TLSConfig)
    assert (tls.client_cert, tls.client_private_key) == (b"CERT\n", b"KEY\n")


def test_temporal_variables_override_the_profile(profiles):
    profiles.setenv("TEMPORAL_PROFILE", "cloud")
    profiles.setenv("TEMPORAL_ADDRESS", "other.example:7233")
    profiles.setenv("TEMPORAL_API_KEY", "key-from-the-env")
    config = connection.connect_config()
    assert config["target_host"] == "other.example:7233"
    assert config["api_key"] == "key-from-the-env"
    assert config["namespace"] == "agents.a1b2c"


def test_an_unknown_profile_or_a_broken_file_is_one_clear_error(profiles, tmp_path):
    profiles.setenv("TEMPORAL_PROFILE", "nope")
    with pytest.raises(connection.ConfigError) as unknown:
        connection.connect_config()
    assert str(unknown.value) == "Temporal configuration: Profile 'nope' not found"
    broken = tmp_path / "broken.toml"
    broken.write_text("address = [\n")
    profiles.setenv("TEMPORAL_CONFIG_FILE", str(broken))
    profiles.delenv("TEMPORAL_PROFILE")
    with pytest.raises(connection.ConfigError) as bad:
        connection.connect_config()
    assert "\n" not in str(bad.value) and "TOML parse error" in str(bad.value)


def test_the_readme_example_profiles_load(profiles, tmp_path):
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    example = readme.split("```toml\n", 1)[1].split("```", 1)[0]
    path = tmp_path / "readme.toml"
    path.write_text(example)
    profiles.setenv("TEMPORAL_CONFIG_FILE", str(path))
    assert connection.connect_config()["target_host"] == "team-server:7233"
    profiles.setenv("TEMPORAL_PROFILE", "cloud")
    cloud = connection.connect_config()
    assert cloud["target_host"] == "us-east-1.aws.api.temporal.io:7233"
    assert cloud["namespace"] == "acme-agents.a1b2c" and cloud["tls"] is True
