"""Where the Temporal server is and how to reach it.

Configured the standard way (TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_API_KEY,
TLS, or a profile in Temporal's config file via temporalio.envconfig). With nothing
configured, magsag uses its embedded dev server on localhost:7233.
"""

import logging
import os
import socket

from temporalio.client import Client
from temporalio.envconfig import ClientConfig
from temporalio.runtime import (
    LogForwardingConfig,
    LoggingConfig,
    Runtime,
    TelemetryConfig,
    TelemetryFilter,
)

from magsag.contracts import constants as C
from magsag.contracts.wire import data_converter
from magsag.worker.state_dir import state_dir as state_dir  # what every command reads


class ConfigError(ValueError):
    """Temporal's configuration cannot be read: an unknown TEMPORAL_PROFILE, a config
    file that is not valid TOML."""


def connect_config() -> dict:
    """Client.connect's arguments, as every Temporal tool reads them: the profile named
    by TEMPORAL_PROFILE (else "default") in TEMPORAL_CONFIG_FILE (else Temporal's
    config file in the user's config dir), overridden by TEMPORAL_* variables."""
    try:
        config = dict(ClientConfig.load_client_connect_config())
    except RuntimeError as err:  # the SDK's ConfigError, whose message can span lines
        lines = [line for line in str(err).splitlines() if line.strip()]
        detail = lines[0] if len(lines) < 2 else f"{lines[0]}: {lines[-1]}"
        raise ConfigError(f"Temporal configuration: {detail}") from None
    config.setdefault("target_host", C.DEFAULT_ADDRESS)
    if not config.get("target_host"):
        config["target_host"] = C.DEFAULT_ADDRESS
    config.setdefault("namespace", C.DEFAULT_NAMESPACE)
    return config


def is_configured() -> bool:
    """True when the user pointed magsag at a server of their own."""
    return bool(os.environ.get("TEMPORAL_ADDRESS")) or connect_config()["target_host"] != (
        C.DEFAULT_ADDRESS
    )


def reachable(address: str, timeout: float = 0.5) -> bool:
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host or "localhost", int(port)), timeout=timeout):
            return True
    except (OSError, ValueError):
        return False


async def connect() -> Client:
    config = connect_config()
    return await Client.connect(**config, data_converter=data_converter, runtime=_runtime())


_RUNTIME: Runtime | None = None


def _runtime() -> Runtime:
    """The SDK's runtime, with the log lines of its Rust core sent to Python logging
    (stderr, or the worker's log format) instead of stdout, where `--json` output goes."""
    global _RUNTIME
    if _RUNTIME is None:
        forward = LogForwardingConfig(logger=logging.getLogger("temporalio.core"))
        filter_ = TelemetryFilter(core_level="WARN", other_level="ERROR")
        logs = LoggingConfig(filter=filter_, forwarding=forward)
        _RUNTIME = Runtime(telemetry=TelemetryConfig(logging=logs))
    return _RUNTIME


def task_queue() -> str:
    """The shared queue; MAGSAG_TASK_QUEUE separates projects or test runs on one server."""
    return os.environ.get("MAGSAG_TASK_QUEUE") or C.TASK_QUEUE


def hostname() -> str:
    """The host queue's suffix; MAGSAG_HOST overrides it (several workers per machine)."""
    return os.environ.get("MAGSAG_HOST") or socket.gethostname()
