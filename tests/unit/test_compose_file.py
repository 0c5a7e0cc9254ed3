"""docker-compose.yml, deploy/Dockerfile and .dockerignore, checked without a Docker engine.

The Compose file is validated against the Compose Specification's JSON Schema (vendored as
deploy/compose-spec.json), then held to the shape the services rely on: health-gated start
order, loopback-only ports, and secrets that come from the environment, never from the file.
Where a `docker compose` command exists, it also gets the last word on the file.
"""

import hashlib
import json
import re
from fnmatch import fnmatchcase
from pathlib import Path, PurePosixPath
from typing import Any

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
SCHEMA_FILE = ROOT / "deploy" / "compose-spec.json"
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"

# Must change together with deploy/README.md, which says where the schema comes from.
SCHEMA_SHA256 = "56bab44c85c0ce8affb74474950293f37d510673283a243bcd7eeadb900fa35c"

# Each Retain service and the port it listens on (RETAIN_<SERVICE>_PORT).
SERVICE_PORTS = {"ingest": 8080, "profile": 8081, "scoring": 8082, "notify": 8083}
INFRASTRUCTURE = ("kafka", "postgres", "mailpit")
LOOPBACK = "127.0.0.1"
REQUIRED_SECRET = re.compile(r"\$\{(?P<name>[A-Z0-9_]+):\?[^}]+\}")

Compose = dict[str, Any]


@pytest.fixture(scope="module")
def compose() -> Compose:
    document = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    assert isinstance(document, dict)
    return document


def _service(compose: Compose, name: str) -> dict[str, Any]:
    service = compose["services"][name]
    assert isinstance(service, dict)
    return service


def _environment(service: dict[str, Any]) -> dict[str, str]:
    """A service's environment as a mapping, whichever of the two Compose forms it uses."""
    environment = service.get("environment", {})
    if isinstance(environment, list):
        return dict(item.split("=", 1) if "=" in item else (item, "") for item in environment)
    return {key: "" if value is None else str(value) for key, value in environment.items()}


def _healthcheck_command(service: dict[str, Any]) -> str:
    test = service["healthcheck"]["test"]
    return test if isinstance(test, str) else " ".join(test)


def _published_ports(service: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(host ip, published port, container port) for each entry of a service's `ports`."""
    published = []
    for entry in service.get("ports", []):
        if isinstance(entry, dict):
            published.append(
                (
                    str(entry.get("host_ip", "")),
                    str(entry.get("published", "")),
                    str(entry["target"]),
                )
            )
            continue
        parts = str(entry).split("/", 1)[0].split(":")  # drop a /tcp or /udp suffix
        if len(parts) == 3:
            host_ip, published_port, container_port = parts
        elif len(parts) == 2:
            host_ip, (published_port, container_port) = "", parts
        else:
            host_ip, published_port, container_port = "", "", parts[0]
        published.append((host_ip, published_port, container_port))
    return published


# --- The Compose Specification ---------------------------------------------------------------


def _validator_class(schema: dict[str, Any]) -> Any:
    """The validator for the draft the schema declares (it may spell the URI loosely)."""
    declared = str(schema.get("$schema", ""))
    for marker, validator in (
        ("2020-12", jsonschema.Draft202012Validator),
        ("2019-09", jsonschema.Draft201909Validator),
        ("draft-07", jsonschema.Draft7Validator),
        ("draft-06", jsonschema.Draft6Validator),
        ("draft-04", jsonschema.Draft4Validator),
    ):
        if marker in declared:
            return validator
    return jsonschema.Draft7Validator


def test_vendored_schema_is_the_recorded_file() -> None:
    digest = hashlib.sha256(SCHEMA_FILE.read_bytes()).hexdigest()
    assert digest == SCHEMA_SHA256, (
        "deploy/compose-spec.json changed; record its new origin and digest in "
        "deploy/README.md and in SCHEMA_SHA256"
    )


def test_compose_file_follows_the_compose_specification(compose: Compose) -> None:
    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    validator_class = _validator_class(schema)
    validator_class.check_schema(schema)
    errors = sorted(
        validator_class(schema).iter_errors(compose), key=lambda error: list(error.path)
    )
    assert not errors, "\n".join(
        f"{'.'.join(map(str, error.path)) or '<root>'}: {error.message}" for error in errors
    )


# --- The stack's shape ------------------------------------------------------------------------


def test_stack_has_the_services_and_their_infrastructure(compose: Compose) -> None:
    assert set(compose["services"]) >= {*SERVICE_PORTS, *INFRASTRUCTURE}


@pytest.mark.parametrize(("name", "port"), SERVICE_PORTS.items())
def test_service_runs_from_the_shared_image(compose: Compose, name: str, port: int) -> None:
    service = _service(compose, name)
    build = service["build"]
    assert isinstance(build, dict), f"{name}: build must name deploy/Dockerfile"
    context = ROOT / build.get("context", ".")
    assert context.resolve() == ROOT
    assert (context / build["dockerfile"]).resolve() == DOCKERFILE
    assert service["command"] == [name], "the image's entrypoint picks the service"


def test_setup_job_runs_once_before_every_service(compose: Compose) -> None:
    setup = _service(compose, "setup")
    assert setup["command"] == ["setup"]
    assert setup["restart"] == "no"
    assert setup["image"] == _service(compose, "ingest")["image"]
    for dependency in ("kafka", "postgres"):
        assert setup["depends_on"][dependency]["condition"] == "service_healthy"
    for name in SERVICE_PORTS:
        condition = _service(compose, name)["depends_on"]["setup"]["condition"]
        assert condition == "service_completed_successfully", name
        # The job made the topics; a service must not race to make them with other settings.
        assert _environment(_service(compose, name))["RETAIN_KAFKA_CREATE_TOPICS"] == "false"


def test_prometheus_and_grafana_start_only_with_the_observability_profile(
    compose: Compose,
) -> None:
    for name in ("prometheus", "grafana"):
        service = _service(compose, name)
        assert service["profiles"] == ["observability"], name
        assert "healthcheck" in service, name
        for volume in service["volumes"]:
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), f"{name} mounts {source}, which is missing"
    for name in (*SERVICE_PORTS, *INFRASTRUCTURE, "setup"):
        assert "profiles" not in _service(compose, name), f"{name} must start by default"


@pytest.mark.parametrize(("name", "port"), SERVICE_PORTS.items())
def test_service_is_healthy_only_when_ready(compose: Compose, name: str, port: int) -> None:
    service = _service(compose, name)
    test = service["healthcheck"]["test"]
    assert isinstance(test, list)
    assert test[0] == "CMD", "exec form: the image has no curl and needs no shell"
    assert test[1:3] == ["python", "-c"]
    assert f"http://127.0.0.1:{port}/readyz" in test[3]


@pytest.mark.parametrize(("name", "port"), SERVICE_PORTS.items())
def test_service_starts_after_kafka_and_postgres_are_healthy(
    compose: Compose, name: str, port: int
) -> None:
    depends_on = _service(compose, name)["depends_on"]
    assert isinstance(depends_on, dict), "the short list form cannot wait for health"
    for dependency in ("kafka", "postgres"):
        assert depends_on[dependency]["condition"] == "service_healthy", (name, dependency)


@pytest.mark.parametrize(("name", "port"), SERVICE_PORTS.items())
def test_service_settings_point_at_the_stack(compose: Compose, name: str, port: int) -> None:
    environment = _environment(_service(compose, name))
    assert environment[f"RETAIN_{name.upper()}_PORT"] == str(port)
    assert environment["RETAIN_HTTP_HOST"] == "0.0.0.0"
    assert environment["RETAIN_KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"
    database_url = environment["RETAIN_DATABASE_URL"]
    assert database_url.startswith("postgresql+asyncpg://")
    assert database_url.endswith("@postgres:5432/retain")
    assert _published_ports(_service(compose, name)) == [(LOOPBACK, str(port), str(port))]


def test_kafka_is_a_single_kraft_node_advertised_on_the_compose_network(compose: Compose) -> None:
    kafka = _service(compose, "kafka")
    assert re.fullmatch(r"apache/kafka:4\.\d+\.\d+", kafka["image"]), "pin an exact 4.x release"
    environment = _environment(kafka)
    assert environment["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert environment["CLUSTER_ID"]
    advertised = environment["KAFKA_ADVERTISED_LISTENERS"].split(",")
    internal = environment["KAFKA_INTER_BROKER_LISTENER_NAME"]
    assert f"{internal}://kafka:9092" in advertised
    for setting in (
        "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR",
        "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR",
        "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR",
        "KAFKA_DEFAULT_REPLICATION_FACTOR",
    ):
        assert environment[setting] == "1", setting
    assert "kafka-broker-api-versions" in _healthcheck_command(kafka)


def test_postgres_is_recent_and_reports_health(compose: Compose) -> None:
    postgres = _service(compose, "postgres")
    match = re.fullmatch(r"postgres:(\d+)(\.\d+)?", postgres["image"])
    assert match, "pin the PostgreSQL major version"
    assert int(match.group(1)) >= 16
    assert "pg_isready" in _healthcheck_command(postgres)


def test_notify_sends_to_mailpit(compose: Compose) -> None:
    notify = _service(compose, "notify")
    environment = _environment(notify)
    assert environment["RETAIN_SMTP_HOST"] == "mailpit"
    assert environment["RETAIN_SMTP_PORT"] == "1025"
    assert notify["depends_on"]["mailpit"]["condition"] == "service_healthy"
    mailpit = _service(compose, "mailpit")
    assert mailpit["image"].startswith("axllent/mailpit:")
    assert (LOOPBACK, "8025", "8025") in _published_ports(mailpit)


def test_every_published_port_binds_to_loopback(compose: Compose) -> None:
    for name, service in compose["services"].items():
        for host_ip, published, container in _published_ports(service):
            assert host_ip == LOOPBACK, f"{name} publishes {container} on {host_ip or 'all'}"
            assert published, f"{name}: give port {container} a fixed host port"


def test_kafka_and_postgres_keep_data_in_named_volumes(compose: Compose) -> None:
    named = set(compose.get("volumes") or {})
    for name, data_dir in (
        ("kafka", _environment(_service(compose, "kafka"))["KAFKA_LOG_DIRS"]),
        ("postgres", "/var/lib/postgresql/data"),
    ):
        mounts = {}
        for volume in _service(compose, name)["volumes"]:
            if isinstance(volume, str):
                source, target = volume.split(":")[:2]
            else:
                source, target = volume["source"], volume["target"]
            mounts[target] = source
        assert mounts.get(data_dir) in named, f"{name}: {data_dir} on a named volume"


def test_secrets_come_from_the_environment(compose: Compose) -> None:
    """The admin token and the database password have no default: Compose stops without them."""
    for name in SERVICE_PORTS:
        environment = _environment(_service(compose, name))
        token = REQUIRED_SECRET.fullmatch(environment["RETAIN_ADMIN_TOKEN"])
        assert token, f"{name}: RETAIN_ADMIN_TOKEN must be ${{RETAIN_ADMIN_TOKEN:?...}}"
        assert token.group("name") == "RETAIN_ADMIN_TOKEN"
        password = REQUIRED_SECRET.search(environment["RETAIN_DATABASE_URL"])
        assert password, f"{name}: the database password must come from the environment"
        assert password.group("name") == "RETAIN_POSTGRES_PASSWORD"
    postgres_password = _environment(_service(compose, "postgres"))["POSTGRES_PASSWORD"]
    assert REQUIRED_SECRET.fullmatch(postgres_password)
    # No other spelling of a secret anywhere in the file, including anchors and x- blocks.
    text = COMPOSE_FILE.read_text(encoding="utf-8")
    for line in text.splitlines():
        key, _, value = line.strip().partition(":")
        if key in {"RETAIN_ADMIN_TOKEN", "POSTGRES_PASSWORD"}:
            assert REQUIRED_SECRET.fullmatch(value.strip().strip("\"'")), line


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of deploy/Dockerfile, continuation lines joined."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue  # a comment inside a continued instruction
        pending = f"{pending} {line}" if pending else line
        if pending.endswith("\\"):
            pending = pending[:-1].rstrip()
            continue
        keyword, _, arguments = pending.partition(" ")
        instructions.append((keyword.upper(), arguments.strip()))
        pending = ""
    assert not pending, "the Dockerfile ends inside a continued line"
    return instructions


def _words(arguments: str) -> list[str]:
    """An instruction's arguments, in either the JSON-array or the shell form."""
    if arguments.startswith("["):
        words = json.loads(arguments)
        assert isinstance(words, list)
        return [str(word) for word in words]
    return arguments.split()


def _copied_sources() -> list[str]:
    """Paths that COPY and ADD take from the build context (not from another stage)."""
    sources: list[str] = []
    for keyword, arguments in _instructions():
        if keyword not in {"COPY", "ADD"}:
            continue
        words = _words(arguments)
        if any(word.startswith("--from=") for word in words):
            continue
        paths = [word for word in words if not word.startswith("--")]
        sources.extend(paths[:-1])
    return sources


def _dockerignore_excludes(path: str) -> bool:
    """Whether .dockerignore keeps `path` out of the build context (the last match decides)."""
    patterns = [
        line.strip()
        for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.strip().startswith("#")
    ]
    candidate = PurePosixPath(path)
    candidates = [str(candidate), *(str(parent) for parent in candidate.parents if parent.name)]
    excluded = False
    for pattern in patterns:
        negated = pattern.startswith("!")
        cleaned = pattern.removeprefix("!").strip("/")
        if any(fnmatchcase(name, cleaned) for name in candidates):
            excluded = not negated
    return excluded


def test_dockerfile_copies_files_that_exist_and_reach_the_build() -> None:
    sources = _copied_sources()
    assert {"pyproject.toml", "uv.lock", "services", "schemas"} <= set(sources)
    for source in sources:
        assert (ROOT / source).exists(), f"COPY {source}: no such file in the repository"
        assert not _dockerignore_excludes(source), f"COPY {source}: .dockerignore leaves it out"


def test_dockerignore_keeps_local_state_and_secrets_out() -> None:
    for path in (
        ".env",
        ".git/config",
        ".venv/bin/python",
        ".retain/admin-token",
        "tests",
        "deploy/k8s",
    ):
        assert _dockerignore_excludes(path), path
    assert _dockerignore_excludes("services/ingest/__pycache__/main.cpython-311.pyc")


def test_image_is_multi_stage_on_python_slim() -> None:
    instructions = _instructions()
    defaults = {}
    for keyword, arguments in instructions:
        if keyword == "FROM":
            break
        if keyword == "ARG" and "=" in arguments:
            name, _, value = arguments.partition("=")
            defaults[name] = value
    bases = [
        re.sub(r"\$\{?(\w+)\}?", lambda match: defaults.get(match.group(1), ""), words[0])
        for keyword, arguments in instructions
        if keyword == "FROM"
        for words in [_words(arguments)]
    ]
    assert len(bases) >= 2, "build and runtime stages"
    assert all(base == "python:3.11-slim" for base in bases), bases


def test_image_installs_the_locked_runtime_dependencies_with_a_pinned_uv() -> None:
    runs = " ".join(arguments for keyword, arguments in _instructions() if keyword == "RUN")
    args = dict(
        arguments.partition("=")[::2]
        for keyword, arguments in _instructions()
        if keyword == "ARG" and "=" in arguments
    )
    assert re.fullmatch(r"\d+\.\d+\.\d+", args.get("UV_VERSION", "")), "pin uv exactly"
    assert 'pip install --no-cache-dir --disable-pip-version-check "uv==${UV_VERSION}"' in runs
    assert "uv sync --frozen --no-dev --no-group local" in runs
    makefile = ROOT / "Makefile"
    if makefile.exists():
        pinned = re.search(r"^UV_VERSION\s*:?=\s*(\S+)", makefile.read_text(), re.MULTILINE)
        if pinned:
            assert args["UV_VERSION"] == pinned.group(1), "the image and the Makefile share one uv"


def test_image_runs_as_an_unprivileged_user_with_the_service_ports() -> None:
    instructions = _instructions()
    users = [arguments for keyword, arguments in instructions if keyword == "USER"]
    assert users, "the image must not run as root"
    user = users[-1].split(":")[0]
    assert user not in {"root", "0"}
    exposed = {
        int(word.split("/")[0])
        for keyword, arguments in instructions
        if keyword == "EXPOSE"
        for word in _words(arguments)
    }
    assert exposed == set(SERVICE_PORTS.values())


def test_image_bakes_in_no_secret() -> None:
    for keyword, arguments in _instructions():
        if keyword in {"ENV", "ARG"}:
            assert not re.search(r"TOKEN|PASSWORD|SECRET|DATABASE_URL", arguments), arguments
