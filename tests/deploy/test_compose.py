"""docker-compose.yaml, docker/*.Dockerfile and .dockerignore, checked against the code they deploy.

No container engine runs here, so nothing is started or built. Instead:

- docker-compose (Debian's 1.29.2) parses the file as `docker compose` would, and the file is
  validated against the Compose Specification schema that ships with it;
- the structure is compared with what the code computes or reads: the paths the DAG and
  recflow.config derive from their own location, the RECFLOW_* variables the code reads, the
  master URL the Spark provider builds from the connection, the engine make_engine builds from the
  warehouse URL, the versions uv.lock pins;
- no secret has a default: without a required variable `docker-compose config` fails and names
  it, every variable is in .env.example, the ports listen on 127.0.0.1 unless told otherwise, and
  scripts/compose_env.py (scripts/compose_local.sh) writes a .env with which the file renders.

Structural checks read the file with PyYAML and apply the `${VAR:-default}` defaults, with the
required variables from a .env that scripts/compose_env.py wrote: what a developer gets from
scripts/compose_local.sh. Every docker-compose run gets its variables from an --env-file and a
cleaned environment, never from a developer's own .env or shell.
"""

from __future__ import annotations

import ast
import base64
import concurrent.futures
import fnmatch
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import sqlalchemy as sa
import yaml

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "docker-compose.yaml"
ENV_EXAMPLE = REPO / ".env.example"
INITDB_DIR = REPO / "docker" / "warehouse" / "initdb"
COMPOSE_ENV_SCRIPT = REPO / "scripts" / "compose_env.py"
COMPOSE_LOCAL_SCRIPT = REPO / "scripts" / "compose_local.sh"
DAG_FILE = REPO / "dags" / "recommendations_daily.py"
# Where the code reads its deployment settings and derives its paths.
CODE_DIRS = ("recflow", "dags", "plugins", "spark_jobs", "scripts")
# The services the stack is made of (Airflow 3's official layout, plus RecFlow's).
AIRFLOW_SERVICES = ("airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer")
EXPECTED_SERVICES = {
    "postgres",
    "warehouse",
    "spark-master",
    "spark-worker",
    "spark-connect",
    "airflow-init",
    *AIRFLOW_SERVICES,
}
# Settings that must reach the Airflow containers, or the code silently falls back to an embedded
# SQLite warehouse, a data folder inside the image and an input folder (<data>/inputs) that nothing
# fills. All must be read by recflow/config.py.
REQUIRED_RECFLOW_VARIABLES = ("RECFLOW_WAREHOUSE_URL", "RECFLOW_DATA_DIR", "RECFLOW_INPUT_ROOTS")
SPARK_MASTER_CLASS = "org.apache.spark.deploy.master.Master"
SPARK_WORKER_CLASS = "org.apache.spark.deploy.worker.Worker"
# The secrets a deployment must choose itself: docker compose refuses to start without each one.
SECRET_VARIABLES = (
    "_AIRFLOW_WWW_USER_PASSWORD",
    "AIRFLOW__API_AUTH__JWT_SECRET",
    "AIRFLOW__API__SECRET_KEY",
    "AIRFLOW__CORE__FERNET_KEY",
    "AIRFLOW_DB_PASSWORD",
    "WAREHOUSE_ROOT_PASSWORD",
    "WAREHOUSE_PASSWORD",
    "RECFLOW_BI_READER_PASSWORD",
)
# Container settings that hold a secret (or a URL with one), and what the file used to fall back
# to: public values, which anyone could log in or sign API tokens with.
SECRET_SETTINGS = (
    "_AIRFLOW_WWW_USER_PASSWORD",
    "AIRFLOW__API_AUTH__JWT_SECRET",
    "AIRFLOW__API__SECRET_KEY",
    "AIRFLOW__CORE__FERNET_KEY",
    "POSTGRES_PASSWORD",
    "MYSQL_ROOT_PASSWORD",
    "MYSQL_PASSWORD",
    "RECFLOW_BI_READER_PASSWORD",
)
URL_SETTINGS = ("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "RECFLOW_WAREHOUSE_URL")
OLD_DEFAULTS = ("", "admin", "airflow", "recflow", "recflow-root", "bi-reader-local",
                "recflow-local-jwt-secret", "recflow-local-api-secret")  # fmt: skip
BIND_VARIABLE = "RECFLOW_BIND_ADDRESS"
LOOPBACK = "127.0.0.1"

_VARIABLE = re.compile(r"\$(?:\$|\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\})")


# --- reading the files -----------------------------------------------------------------------


class MissingVariable(KeyError):
    """A required variable (${VAR:?message}) has no value."""


def interpolate(value: Any, env: dict[str, str]) -> Any:
    """Compose's variable substitution, recursively: ${VAR}, ${VAR:-default}, ${VAR-default},
    ${VAR:?message}, ${VAR?message}, $$."""
    if isinstance(value, dict):
        return {key: interpolate(item, env) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item, env) for item in value]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match) -> str:
        if match[0] == "$$":
            return "$"
        name, op, arg = match["name"], match["op"], match["arg"]
        current = env.get(name)
        if op == ":-":
            return current if current else arg
        if op == "-":
            return arg if current is None else current
        if (op == ":?" and not current) or (op == "?" and current is None):
            raise MissingVariable(f"{name}: {arg}")
        return current or ""

    return _VARIABLE.sub(substitute, value)


def references(value: Any, where: tuple = ()) -> list[tuple[tuple, str, str | None, str | None]]:
    """(where, name, op, arg) of every ${...} in the parsed (uninterpolated) file; `where` is the
    key path, e.g. ('services', 'warehouse', 'ports', 0). Comments are not part of it."""
    if isinstance(value, dict):
        return [ref for key, item in value.items() for ref in references(item, (*where, key))]
    if isinstance(value, list):
        return [ref for index, item in enumerate(value) for ref in references(item, (*where, index))]
    if not isinstance(value, str):
        return []
    return [(where, m["name"], m["op"], m["arg"]) for m in _VARIABLE.finditer(value) if m["name"]]


def read_env_file(path: Path) -> dict[str, str]:
    """NAME=value lines, as Compose reads a .env (no quoting is used in ours)."""
    env = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            env[name.strip()] = value
    return env


def generate_env(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(COMPOSE_ENV_SCRIPT), "--output", str(path)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip


@pytest.fixture(scope="module")
def raw_text() -> str:
    return COMPOSE_FILE.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def raw_compose(raw_text) -> dict:
    """The parsed file before interpolation: anchors merged, every ${...} still in place."""
    return yaml.safe_load(raw_text)


@pytest.fixture(scope="module")
def required_variables(raw_compose) -> set[str]:
    return {name for _, name, op, _ in references(raw_compose) if op in (":?", "?")}


@pytest.fixture(scope="module")
def env_file(tmp_path_factory) -> Path:
    """A .env as scripts/compose_env.py writes it (what scripts/compose_local.sh starts with)."""
    path = tmp_path_factory.mktemp("compose-env") / ".env"
    result = generate_env(path)
    assert result.returncode == 0, result.stderr
    return path


@pytest.fixture(scope="module")
def compose_env(env_file) -> dict[str, str]:
    return read_env_file(env_file)


@pytest.fixture(scope="module")
def compose(raw_compose, compose_env) -> dict:
    """The compose file as a generated .env renders it: optional variables at their defaults."""
    return interpolate(raw_compose, env=compose_env)


@pytest.fixture(scope="module")
def services(compose) -> dict[str, dict]:
    return compose["services"]


@pytest.fixture(scope="module")
def lock() -> dict[str, str]:
    """package name -> version pinned in uv.lock."""
    data = tomllib.loads((REPO / "uv.lock").read_text(encoding="utf-8"))
    return {package["name"]: package["version"] for package in data["package"] if "version" in package}


def environment(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {key: "" if value is None else str(value) for key, value in env.items()}


def volumes(service: dict) -> list[tuple[str, str]]:
    """(source, target) of every volume entry, short or long syntax."""
    result = []
    for entry in service.get("volumes") or []:
        if isinstance(entry, dict):
            result.append((str(entry.get("source", "")), str(entry["target"])))
        else:
            source, target, *_ = entry.split(":")
            result.append((source, target))
    return result


def is_bind(source: str) -> bool:
    return source.startswith((".", "/", "~"))


def code_mounts(service: dict) -> dict[str, str]:
    """repository path (relative, e.g. 'dags') -> container path, for the bind mounts of the repo."""
    return {
        (REPO / source).resolve().relative_to(REPO).as_posix(): target
        for source, target in volumes(service)
        if is_bind(source)
    }


def command(service: dict) -> list[str]:
    cmd = service.get("command") or []
    return cmd.split() if isinstance(cmd, str) else [str(part) for part in cmd]


def dockerfile_of(service: dict) -> Path:
    build = service["build"]
    context = REPO / (build if isinstance(build, str) else build.get("context", "."))
    return context / (build.get("dockerfile", "Dockerfile") if isinstance(build, dict) else "Dockerfile")


def services_built_from(services: dict, name: str) -> dict[str, dict]:
    return {
        key: service
        for key, service in services.items()
        if "build" in service and dockerfile_of(service).name == name
    }


def dockerfile_instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for line in path.read_text(encoding="utf-8").splitlines():
        if not pending and line.lstrip().startswith("#"):
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        full = (pending + line).strip()
        pending = ""
        if full:
            keyword, _, rest = full.partition(" ")
            instructions.append((keyword.upper(), rest.strip()))
    return instructions


def from_images(path: Path, repository: str) -> list[str]:
    """The tags of the FROM lines of `path` that use `repository`."""
    tags = []
    for keyword, args in dockerfile_instructions(path):
        if keyword == "FROM":
            image = [part for part in args.split() if not part.startswith("--")][0]
            if image.split(":")[0] == repository:
                tags.append(image.split(":", 1)[1])
    return tags


def dockerfile_env(path: Path) -> dict[str, str]:
    env: dict[str, str] = {}
    for keyword, args in dockerfile_instructions(path):
        if keyword == "ENV":
            for pair in args.split():
                if "=" in pair:
                    key, value = pair.split("=", 1)
                    env[key] = value
    return env


def copy_destinations(path: Path) -> dict[str, str]:
    """source -> destination of the COPY instructions that copy from the build context."""
    result = {}
    for keyword, args in dockerfile_instructions(path):
        if keyword == "COPY":
            parts = args.split()
            if any(part.startswith("--from") for part in parts):
                continue
            paths = [part for part in parts if not part.startswith("--")]
            for source in paths[:-1]:
                result[source] = paths[-1]
    return result


def major_minor(version: str) -> tuple[int, int]:
    major, minor = re.match(r"(\d+)\.(\d+)", version).groups()
    return int(major), int(minor)


class ContainerPath(PurePosixPath):
    """A path on the container's filesystem: resolve() cannot look at the host's."""

    def resolve(self, strict: bool = False) -> ContainerPath:
        return self


def evaluate_assignment(source_file: Path, name: str, namespace: dict[str, Any]) -> Any:
    """Evaluate the module-level `name = <expression>` of `source_file` in `namespace`.

    The code's own expression, so a change to how the code derives a path is checked as it is.
    """
    tree = ast.parse(source_file.read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(target, ast.Name) and target.id == name for target in node.targets
        ):
            return eval(
                compile(ast.Expression(node.value), str(source_file), "eval"),
                {"Path": ContainerPath, **namespace},
            )
    raise AssertionError(f"{source_file} no longer assigns {name}")


def dag_conn_ids() -> set[str]:
    tree = ast.parse(DAG_FILE.read_text(encoding="utf-8"))
    return {
        keyword.value.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "SparkSubmitOperator"
        for keyword in node.keywords
        if keyword.arg == "conn_id" and isinstance(keyword.value, ast.Constant)
    }


def code_reads(name: str) -> list[Path]:
    """The files under CODE_DIRS that mention the variable `name` (as a whole word)."""
    pattern = re.compile(rf"\b{re.escape(name)}\b")
    hits = []
    for directory in CODE_DIRS:
        for path in (REPO / directory).rglob("*"):
            if path.is_file() and path.suffix in (".py", ".sh", "") and "__pycache__" not in path.parts:
                if pattern.search(path.read_text(encoding="utf-8", errors="replace")):
                    hits.append(path)
    return hits


def require_docker_compose() -> str:
    path = shutil.which("docker-compose")
    if path is None:
        message = "docker-compose is not installed (scripts/install_system_packages.sh installs it)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


def compose_variables() -> set[str]:
    return {name for _, name, _, _ in references(yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8")))}


def docker_compose_config(
    env_file: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """`docker-compose --env-file ENV_FILE -f docker-compose.yaml config ARGS`, with none of the
    variables the file reads in its environment except those in ``env`` (a developer's .env and
    exported settings stay out of it)."""
    docker_compose = require_docker_compose()
    names = compose_variables()
    clean = {
        key: value for key, value in os.environ.items() if not key.startswith("COMPOSE_") and key not in names
    }
    return subprocess.run(
        [docker_compose, "--env-file", str(env_file), "-f", str(COMPOSE_FILE), "config", *args],
        cwd=REPO, env={**clean, **(env or {})}, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def published_host_ips(rendered: dict) -> dict[str, list[str]]:
    """service -> the host address of each published port, in `docker-compose config`'s output
    (1.29 writes "IP:HOST:CONTAINER/tcp"; Compose v2 the long form with host_ip)."""
    result = {}
    for name, service in rendered["services"].items():
        ips = []
        for port in service.get("ports") or []:
            if isinstance(port, dict):
                ips.append(str(port.get("host_ip") or ""))
            else:
                parts = str(port).split(":")
                ips.append(":".join(parts[:-2]) if len(parts) >= 3 else "")
        if ips:
            result[name] = ips
    return result


# --- 1. the file parses, as docker-compose reads it, and matches the Compose Specification ------


def test_docker_compose_parses_the_file(env_file):
    result = docker_compose_config(env_file, "-q")
    assert result.returncode == 0, f"docker-compose config -q failed:\n{result.stdout}{result.stderr}"


def test_compose_file_follows_the_compose_specification_schema(compose):
    require_docker_compose()
    jsonschema = pytest.importorskip("jsonschema")
    try:
        listing = subprocess.run(
            ["dpkg", "-L", "docker-compose"], capture_output=True, text=True, timeout=30, check=True
        ).stdout.split()
    except (OSError, subprocess.CalledProcessError):
        listing = []
    schemas = [Path(path) for path in listing if Path(path).name == "compose_spec.json"]
    if not schemas:
        message = "the docker-compose package ships no compose_spec.json"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    schema = json.loads(schemas[0].read_text(encoding="utf-8"))
    # The schema declares draft 2019-09 (as "http://json-schema.org/draft/2019-09/schema#").
    assert "2019-09" in schema.get("$schema", ""), schema.get("$schema")
    errors = sorted(jsonschema.Draft201909Validator(schema).iter_errors(compose), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors)


# --- 2. structure against the code ----------------------------------------------------------------


def test_expected_services_with_health_checks(services):
    assert EXPECTED_SERVICES <= set(services), f"missing: {sorted(EXPECTED_SERVICES - set(services))}"
    for name in AIRFLOW_SERVICES:
        # command: api-server, scheduler, dag-processor, triggerer: the service name's suffix.
        expected = {"airflow-apiserver": "api-server"}.get(name, name.removeprefix("airflow-"))
        assert command(services[name]) == [expected], name
    for name in (*AIRFLOW_SERVICES, "postgres", "warehouse", "spark-master", "spark-worker"):
        assert services[name].get("healthcheck", {}).get("test"), f"{name} has no healthcheck"
    # The UI on the host's 8080, the port AIRFLOW__API__BASE_URL names by default.
    assert [str(port).split(":")[-2:] for port in services["airflow-apiserver"].get("ports", [])] == [
        ["8080", "8080"]
    ]
    assert services["airflow-init"].get("environment", {}).get("_AIRFLOW_DB_MIGRATE") == "true"


def test_bind_mounts_exist_in_the_repository_and_named_volumes_are_declared(compose, raw_compose, services):
    declared = set(compose.get("volumes") or {})
    for name, service in services.items():
        raw_sources = [source for source, _ in volumes(raw_compose["services"][name])]
        for (source, target), raw_source in zip(volumes(service), raw_sources, strict=True):
            if raw_source.startswith("${"):
                # A host folder the operator chooses (the inputs): theirs, outside our control,
                # so it may be anywhere; the containers may only read it.
                ro = [entry for entry in service["volumes"] if str(entry).startswith(f"{source}:{target}:")]
                assert ro and str(ro[0]).endswith(":ro"), f"{name}: {raw_source} is not mounted read-only"
            elif is_bind(source):
                path = (REPO / source).resolve()
                assert path.is_relative_to(REPO), f"{name}: {source} is outside the repository"
                assert path.exists(), f"{name}: bind mount source {source} does not exist"
            else:
                assert source in declared, f"{name}: volume {source} is not declared under volumes:"


def test_code_is_mounted_where_the_code_looks_for_it(services):
    airflow = services_built_from(services, "airflow.Dockerfile")
    assert set(AIRFLOW_SERVICES) <= set(airflow)
    for name, service in airflow.items():
        mounts = code_mounts(service)
        env = environment(service)
        for directory in ("dags", "plugins", "spark_jobs", "recflow", "expectations", "sql"):
            assert directory in mounts, f"{name}: ./{directory} is not mounted"
        # recflow/config.py: PROJECT_ROOT derived from the module's own location.
        project_root = evaluate_assignment(
            REPO / "recflow" / "config.py", "PROJECT_ROOT", {"__file__": f"{mounts['recflow']}/config.py"}
        )
        # Every module that reads SQL files finds them under PROJECT_ROOT.
        for module in (
            "recflow/publish_run.py",
            "recflow/warehouse/grants.py",
            "recflow/warehouse/blocklist.py",
        ):
            sql_root = evaluate_assignment(REPO / module, "SQL_ROOT", {"PROJECT_ROOT": project_root})
            assert str(sql_root) == mounts["sql"], (
                f"{name}: {module} reads {sql_root}, ./sql is at {mounts['sql']}"
            )
        # spark_jobs/validate_*.py import the top-level package `expectations`, which only the
        # project root on sys.path (the editable install) provides.
        assert str(project_root / "expectations") == mounts["expectations"], name
        # The DAG finds its Spark job scripts relative to its own file.
        spark_jobs = evaluate_assignment(
            DAG_FILE, "SPARK_JOBS", {"__file__": f"{mounts['dags']}/{DAG_FILE.name}"}
        )
        assert str(spark_jobs) == mounts["spark_jobs"], f"{name}: the DAG submits {spark_jobs}/*.py"
        assert env.get("AIRFLOW__CORE__DAGS_FOLDER") == mounts["dags"], name
        assert env.get("AIRFLOW__CORE__PLUGINS_FOLDER") == mounts["plugins"], name


def test_images_install_the_code_where_it_is_mounted(services):
    """The images carry a copy of the code at the mount points (the editable install points there)."""
    for dockerfile, users in (
        ("airflow.Dockerfile", services_built_from(services, "airflow.Dockerfile")),
        ("spark.Dockerfile", services_built_from(services, "spark.Dockerfile")),
    ):
        copies = copy_destinations(REPO / "docker" / dockerfile)
        for name, service in users.items():
            for directory, target in code_mounts(service).items():
                if directory in copies:
                    assert copies[directory].rstrip("/") == target, (
                        f"{name}: {dockerfile} copies {directory} elsewhere"
                    )
    # The executors import the same recflow / expectations as the driver, at the same paths.
    airflow_mounts = code_mounts(services["airflow-scheduler"])
    worker_mounts = code_mounts(services["spark-worker"])
    for directory in ("recflow", "expectations"):
        assert worker_mounts.get(directory) == airflow_mounts[directory], directory
    assert re.search(
        rf"--editable\s+{re.escape(str(PurePosixPath(airflow_mounts['recflow']).parent))}\b",
        (REPO / "docker" / "airflow.Dockerfile").read_text(encoding="utf-8"),
    ), "airflow.Dockerfile does not install the project editable at the mounted project root"


def test_recflow_variables_are_the_ones_the_code_reads(raw_compose, services):
    set_in_compose = {
        key for service in services.values() for key in environment(service) if key.startswith("RECFLOW_")
    }
    # A variable whose value reaches a container (environment:) is a setting of the code. One
    # that Compose alone reads (a port's host address, a mount's host folder) is a setting of
    # this file: .env.example must list it (test_env_example_lists_every_variable_compose_reads).
    interpolated = {
        name
        for where, name, _, _ in references(raw_compose)
        if name.startswith("RECFLOW_") and "environment" in where
    }
    unknown = {name for name in set_in_compose | interpolated if not code_reads(name)}
    assert not unknown, f"RECFLOW_* variables no code in {CODE_DIRS} reads: {sorted(unknown)}"
    config_reads = set(re.findall(r'_env\("(RECFLOW_\w+)"', (REPO / "recflow" / "config.py").read_text()))
    for name in REQUIRED_RECFLOW_VARIABLES:
        assert name in config_reads, f"recflow/config.py no longer reads {name}"
        for service in AIRFLOW_SERVICES:
            assert environment(services[service]).get(name), f"{service} does not set {name}"


def test_driver_and_executors_share_the_data_directory(services):
    """Executors write lake partitions that the driver commits and the publish task reads."""
    scheduler, worker = services["airflow-scheduler"], services["spark-worker"]
    data_dir = environment(scheduler)["RECFLOW_DATA_DIR"]
    assert environment(worker).get("RECFLOW_DATA_DIR", data_dir) == data_dir
    scheduler_volume = {target: source for source, target in volumes(scheduler)}.get(data_dir)
    worker_volume = {target: source for source, target in volumes(worker)}.get(data_dir)
    assert scheduler_volume and not is_bind(scheduler_volume), (
        f"no named volume at {data_dir} in the scheduler"
    )
    assert worker_volume == scheduler_volume, (
        f"the worker mounts {worker_volume} at {data_dir}, not {scheduler_volume}"
    )
    # Same owner for files written by either side.
    assert worker.get("user") == scheduler.get("user")


def test_spark_connection_reaches_the_master(services, tmp_path):
    conn_ids = dag_conn_ids()
    assert conn_ids, "the DAG has no SparkSubmitOperator with a conn_id"
    masters = [name for name, service in services.items() if SPARK_MASTER_CLASS in command(service)]
    workers = [name for name, service in services.items() if SPARK_WORKER_CLASS in command(service)]
    assert len(masters) == 1 and workers, (masters, workers)
    master_cmd = command(services[masters[0]])
    master_port = int(master_cmd[master_cmd.index("--port") + 1]) if "--port" in master_cmd else 7077
    for conn_id in conn_ids:
        variable = f"AIRFLOW_CONN_{conn_id.upper()}"
        value = environment(services["airflow-scheduler"]).get(variable)
        assert value, f"the scheduler (where tasks run) has no {variable}"
        # The master URL as the Spark provider builds it from this connection.
        probe = (
            "import json; from airflow.providers.apache.spark.hooks.spark_submit import SparkSubmitHook; "
            f"print(json.dumps(SparkSubmitHook(conn_id={conn_id!r})._connection))"
        )
        env = {
            "PATH": os.environ.get("PATH", ""),
            "AIRFLOW_HOME": str(tmp_path),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "false",
            variable: value,
        }
        result = subprocess.run(
            [sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path
        )
        assert result.returncode == 0, result.stderr[-2000:]
        resolved = json.loads(result.stdout.strip().splitlines()[-1])
        match = re.fullmatch(r"spark://([^:/]+):(\d+)", resolved["master"])
        assert match, f"{variable} gives master {resolved['master']!r}, not spark://host:port"
        assert match[1] == masters[0], f"master host {match[1]!r} is not the service {masters[0]!r}"
        assert int(match[2]) == master_port, f"master port {match[2]} != the master's --port {master_port}"
        # Client mode: the driver runs in the task, next to the lake volume and the warehouse.
        assert resolved["deploy_mode"] in (None, "client"), resolved["deploy_mode"]
        for worker in workers:
            assert resolved["master"] in command(services[worker]), f"{worker} registers elsewhere"


def test_spark_tasks_reach_the_warm_connect_server_which_runs_on_the_cluster(services):
    """The default backend in containers: the Spark Connect connection names the spark-connect
    service and its port; that server is recflow.spark_connect's (server_conf's settings), an
    application of the stack's master, on the lake and inputs the workers see, and reachable from
    the stack's network only."""
    scheduler, server = services["airflow-scheduler"], services["spark-connect"]
    assert environment(scheduler)["RECFLOW_SPARK_BACKEND"] == "connect"
    conn = json.loads(environment(scheduler)["AIRFLOW_CONN_SPARK_CONNECT_DEFAULT"])
    assert conn["conn_type"] == "spark_connect" and conn["host"] == "spark-connect"
    settings = environment(server)
    assert int(conn["port"]) == int(settings["RECFLOW_SPARK_CONNECT_PORT"])
    assert command(server)[-3:] == ["-m", "recflow.spark_connect", "serve"]
    master = services["spark-master"]
    master_cmd = command(master)
    assert (
        settings["RECFLOW_SPARK_MASTER"]
        == f"spark://spark-master:{master_cmd[master_cmd.index('--port') + 1]}"
    )
    assert settings["SPARK_LOCAL_HOSTNAME"] == "spark-connect"  # where executors find the driver
    # Every address of the container, but no published port.
    assert settings["RECFLOW_SPARK_CONNECT_BIND"] == "0.0.0.0" and not server.get("ports")
    # The driver on the server reads and commits what the executors write.
    worker_mounts = {target: source for source, target in volumes(services["spark-worker"])}
    server_mounts = {target: source for source, target in volumes(server)}
    for target in (
        settings["RECFLOW_DATA_DIR"],
        settings["RECFLOW_INPUT_ROOTS"],
        *code_mounts(services["spark-worker"]).values(),
    ):
        assert server_mounts.get(target) == worker_mounts.get(target), target
    assert server.get("user") == scheduler.get("user")
    assert scheduler["depends_on"]["spark-connect"]["condition"] == "service_healthy"
    assert server.get("healthcheck", {}).get("test")


def test_warehouse_url_names_the_warehouse_service(services, monkeypatch):
    from recflow.warehouse import engine as engine_module

    url = sa.make_url(environment(services["airflow-scheduler"])["RECFLOW_WAREHOUSE_URL"])
    assert url.host in services, f"warehouse host {url.host!r} is not a service"
    warehouse = services[url.host]
    assert str(warehouse.get("image", "")).startswith("mysql:"), warehouse.get("image")
    server_env = environment(warehouse)
    assert url.database == server_env["MYSQL_DATABASE"]
    assert url.username == server_env["MYSQL_USER"]
    assert url.password == server_env["MYSQL_PASSWORD"]
    assert (url.port or 3306) == 3306 and not any(arg.startswith("--port") for arg in command(warehouse))
    # make_engine, the project's only way to the warehouse, must turn LOAD DATA LOCAL on.
    seen = {}

    def fake_create_engine(parsed, **kwargs):
        seen.update(url=parsed, **kwargs)
        return "engine"

    monkeypatch.setattr(engine_module.sa, "create_engine", fake_create_engine)
    engine_module.make_engine(str(url))
    assert seen.get("connect_args", {}).get("local_infile") is True, f"no local_infile for {url.drivername}"


def test_warehouse_server_allows_local_infile_and_creates_bi_reader(services):
    from recflow.warehouse import grants

    warehouse = services["warehouse"]
    args = command(warehouse)
    assert {"--local-infile=1", "--local_infile=1", "--local-infile=ON"} & set(args), args
    assert "--character-set-server=utf8mb4" in args
    assert warehouse["healthcheck"]["test"], "no healthcheck"
    env = environment(warehouse)
    assert env.get(grants.PASSWORD_ENV), f"{grants.PASSWORD_ENV} does not reach the warehouse"
    # The init script: sourced by the mysql entrypoint, reading sql/ where compose mounts it.
    mounts = code_mounts(warehouse)
    initdb = {target: source for source, target in mounts.items()}.get("/docker-entrypoint-initdb.d")
    assert initdb, "nothing mounted at /docker-entrypoint-initdb.d"
    scripts = sorted((REPO / initdb).glob("*.sh"))
    assert scripts, f"no init script in {initdb}"
    for script in scripts:
        assert not os.access(script, os.X_OK), f"{script} is executable: the entrypoint would not source it"
        text = script.read_text(encoding="utf-8")
        sql_root = re.search(r"^recflow_sql_root=(\S+)$", text, re.M)[1]
        assert mounts.get("sql") == sql_root, (
            f"{script.name} reads {sql_root}, ./sql is mounted at {mounts.get('sql')}"
        )
        assert "grants/bi_reader.sql" in text and (REPO / "sql" / "grants" / "bi_reader.sql").exists()
        assert "schema_migrations" in text and "mysql/" in text
        for variable in (grants.PASSWORD_ENV, grants.HOST_ENV):
            assert variable in text and variable in env, variable


def test_dependencies_wait_for_healthy_databases(services):
    for name, service in services.items():
        depends = service.get("depends_on") or {}
        assert isinstance(depends, dict), f"{name}: depends_on without conditions starts too early"
        for target, condition in depends.items():
            assert target in services, f"{name} depends on unknown {target}"
            wanted = condition.get("condition")
            if target in ("postgres", "warehouse"):
                assert wanted == "service_healthy", f"{name} -> {target}: {wanted}"
            if wanted == "service_healthy":
                assert services[target].get("healthcheck"), (
                    f"{name} waits for {target}, which has no healthcheck"
                )
    for name in (*AIRFLOW_SERVICES, "airflow-init"):
        assert "postgres" in services[name]["depends_on"], f"{name} does not wait for its metadata database"
    # Tasks publish into the warehouse and submit to the master.
    assert "warehouse" in services["airflow-scheduler"]["depends_on"]


def test_dockerfiles_match_the_lock(services, lock):
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    python = major_minor(re.search(r">=\s*(\d+\.\d+)", pyproject["project"]["requires-python"])[1])
    airflow_services = services_built_from(services, "airflow.Dockerfile")
    spark_services = services_built_from(services, "spark.Dockerfile")
    assert airflow_services and spark_services
    for service in (*airflow_services.values(), *spark_services.values()):
        assert dockerfile_of(service).is_file(), dockerfile_of(service)
    airflow_dockerfile = dockerfile_of(next(iter(airflow_services.values())))
    spark_dockerfile = dockerfile_of(next(iter(spark_services.values())))

    # Airflow: the image's Airflow is the locked one, on the project's Python.
    tags = from_images(airflow_dockerfile, "apache/airflow")
    assert tags, "airflow.Dockerfile does not start FROM apache/airflow"
    for tag in tags:
        match = re.fullmatch(r"(?:slim-)?(\d+\.\d+\.\d+)-python(\d+\.\d+)", tag)
        assert match, f"apache/airflow:{tag} names no Airflow and Python version"
        assert match[1] == lock["apache-airflow"], (
            f"apache/airflow:{tag} vs apache-airflow {lock['apache-airflow']}"
        )
        assert major_minor(match[2]) == python, f"apache/airflow:{tag} vs requires-python {python}"
    # Spark 4 needs Java 17+, for the driver too.
    text = airflow_dockerfile.read_text(encoding="utf-8")
    assert re.search(r"openjdk-(1[7-9]|2\d)-jre", text) and "JAVA_HOME" in dockerfile_env(airflow_dockerfile)

    # Spark: the cluster runs the Spark of the locked pyspark.
    tags = from_images(spark_dockerfile, "apache/spark")
    assert tags, "spark.Dockerfile does not start FROM apache/spark"
    for tag in tags:
        assert major_minor(tag) == major_minor(lock["pyspark"]), (
            f"apache/spark:{tag} vs pyspark {lock['pyspark']}"
        )

    # The executors' Python: the minor version of the driver's, at the path the driver names.
    spark_text = spark_dockerfile.read_text(encoding="utf-8")
    installed = re.search(r"uv python install (\d+\.\d+)", spark_text)
    assert installed and major_minor(installed[1]) == python, "spark.Dockerfile installs another Python"
    venv = dockerfile_env(spark_dockerfile)["UV_PROJECT_ENVIRONMENT"]
    for name, service in airflow_services.items():
        env = environment(service)
        assert env.get("PYSPARK_PYTHON") == f"{venv}/bin/python", f"{name}: PYSPARK_PYTHON"
        driver = env.get("PYSPARK_DRIVER_PYTHON", "")
        assert driver.startswith("/") and driver != env["PYSPARK_PYTHON"], f"{name}: PYSPARK_DRIVER_PYTHON"
    assert "--frozen" in spark_text and "--no-dev" in spark_text

    # Both images export / sync the lock with the uv the project pins (Makefile), which wrote it.
    uv_version = re.search(r"^UV_VERSION\s*:=\s*(\S+)", (REPO / "Makefile").read_text(), re.M)[1]
    for dockerfile in (airflow_dockerfile, spark_dockerfile):
        assert from_images(dockerfile, "ghcr.io/astral-sh/uv") == [uv_version], dockerfile.name


def test_dockerignore_keeps_local_state_out_but_not_what_the_images_copy():
    patterns = [
        line.strip().rstrip("/")
        for line in (REPO / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    excluded = [p for p in patterns if not p.startswith("!")]

    def ignored(path: str) -> bool:
        return any(fnmatch.fnmatch(path, p) or fnmatch.fnmatch(path, p.removeprefix("**/")) for p in excluded)

    for local_state in (".venv", ".tools", ".airflow", "data", "logs", ".git", ".env"):
        assert ignored(local_state), f".dockerignore lets {local_state} into the build context"
    for dockerfile in (REPO / "docker").glob("*.Dockerfile"):
        for source in copy_destinations(dockerfile):
            assert (REPO / source).exists(), f"{dockerfile.name} copies missing {source}"
            assert not ignored(source), f"{dockerfile.name} copies {source}, which .dockerignore excludes"


def test_runs_read_inputs_only_from_a_read_only_mount_the_driver_and_executors_share(services):
    """RECFLOW_INPUT_ROOTS (recflow.config: Settings.input_path) names where a run's `path` may
    read; the folders must exist in the containers, read-only, at the same place on the driver
    and on the executors, which read the input files themselves (recflow.ingest)."""
    workers = [name for name, service in services.items() if SPARK_WORKER_CLASS in command(service)]
    mounts_by_service = {}
    for name in (*AIRFLOW_SERVICES, *workers):
        roots = environment(services[name]).get("RECFLOW_INPUT_ROOTS")
        assert roots, f"{name} does not set RECFLOW_INPUT_ROOTS"
        entries = {
            target: str(entry)
            for entry, (_, target) in zip(services[name]["volumes"], volumes(services[name]), strict=True)
        }
        for root in roots.split(":"):  # os.pathsep of the Linux containers
            assert root in entries, f"{name}: the input folder {root} is not mounted"
            assert entries[root].endswith(":ro"), f"{name}: {entries[root]} is writable"
        mounts_by_service[name] = {root: entries[root] for root in roots.split(":")}
    assert len({json.dumps(mounts, sort_keys=True) for mounts in mounts_by_service.values()}) == 1, (
        mounts_by_service
    )
    data_dir = environment(services["airflow-scheduler"])["RECFLOW_DATA_DIR"]
    for root in mounts_by_service["airflow-scheduler"]:
        # airflow-init chowns the data volume, which it cannot do to a read-only mount inside it.
        assert not PurePosixPath(root).is_relative_to(data_dir), f"{root} lies inside {data_dir}"


# --- 3. secrets, ports and the local stack ----------------------------------------------------


def test_every_secret_is_required_and_named_when_missing(
    raw_compose, required_variables, compose_env, tmp_path
):
    """Leave one required variable out: `docker-compose config` fails and its last line is the
    file's own message for that variable (naming it and .env.example)."""
    missing = sorted(set(SECRET_VARIABLES) - required_variables)
    assert not missing, f"secrets docker compose starts without: {missing}"
    messages: dict[str, set[str]] = {}
    for _, name, op, arg in references(raw_compose):
        if op in (":?", "?"):
            messages.setdefault(name, set()).add(arg)
    for name, texts in messages.items():
        for text in texts:
            assert re.match(rf"{re.escape(name)}\b", text) and ".env.example" in text, (name, text)

    def config_without(name: str) -> tuple[str, subprocess.CompletedProcess]:
        env_file = tmp_path / f"without-{name}.env"
        env_file.write_text("".join(f"{key}={value}\n" for key, value in compose_env.items() if key != name))
        return name, docker_compose_config(env_file, "-q")

    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        results = dict(pool.map(config_without, sorted(required_variables)))
    for name, result in results.items():
        last_line = (result.stderr.strip().splitlines() or [""])[-1]
        assert result.returncode != 0, f"docker-compose config passed without {name}"
        assert any(last_line.endswith(text) for text in messages[name]), (
            f"without {name}, docker-compose said: {last_line}"
        )


def test_nothing_required_has_a_default_anywhere(raw_compose, required_variables):
    """A required variable used with :- somewhere else would start with that default there."""
    loose = sorted(
        {(name, "/".join(map(str, where))) for where, name, op, _ in references(raw_compose)
         if name in required_variables and op not in (":?", "?")}
    )  # fmt: skip
    assert not loose, f"required variables used without :? (a default or empty): {loose}"


def test_rendered_config_keeps_no_default_secret(env_file, compose_env):
    result = docker_compose_config(env_file)
    assert result.returncode == 0, result.stderr
    rendered = yaml.safe_load(result.stdout)
    for literal in OLD_DEFAULTS:
        if len(literal) > len("recflow"):  # the short ones are ordinary words of the file
            assert literal not in result.stdout, f"the rendered config still contains {literal!r}"
    seen = set()
    for name, service in rendered["services"].items():
        env = environment(service)
        for key in SECRET_SETTINGS:
            if key in env:
                seen.add(key)
                assert env[key] not in OLD_DEFAULTS, f"{name}: {key} is the old default {env[key]!r}"
                assert env[key] in compose_env.values(), f"{name}: {key} is not one of the .env's values"
        for key in URL_SETTINGS:
            if key in env:
                seen.add(key)
                password = sa.make_url(env[key]).password
                assert password not in OLD_DEFAULTS, f"{name}: {key} has the old password {password!r}"
                assert password in compose_env.values(), f"{name}: {key}'s password is not from the .env"
    assert seen == {*SECRET_SETTINGS, *URL_SETTINGS}, sorted({*SECRET_SETTINGS, *URL_SETTINGS} - seen)
    # Docker's own networks, not '%' (any host): see RECFLOW_BI_READER_HOST in .env.example.
    assert environment(rendered["services"]["warehouse"])["RECFLOW_BI_READER_HOST"] != "%"
    # root logs in over the container's socket only, not through the published port.
    assert environment(rendered["services"]["warehouse"]).get("MYSQL_ROOT_HOST") == "localhost"


def test_published_ports_listen_on_loopback_unless_told_otherwise(env_file):
    result = docker_compose_config(env_file)
    assert result.returncode == 0, result.stderr
    ips = published_host_ips(yaml.safe_load(result.stdout))
    assert {"airflow-apiserver", "warehouse"} <= set(ips), ips
    wrong = {name: addresses for name, addresses in ips.items() if set(addresses) != {LOOPBACK}}
    assert not wrong, f"ports published on other addresses than {LOOPBACK} (empty: all interfaces): {wrong}"
    # One variable moves them all, when the operator says so.
    result = docker_compose_config(env_file, env={BIND_VARIABLE: "0.0.0.0"})
    assert result.returncode == 0, result.stderr
    assert {
        address
        for addresses in published_host_ips(yaml.safe_load(result.stdout)).values()
        for address in addresses
    } == {"0.0.0.0"}


def test_generator_writes_every_required_variable_freshly_generated(tmp_path, required_variables):
    first, second = tmp_path / "first.env", tmp_path / "second.env"
    for path in (first, second):
        result = generate_env(path)
        assert result.returncode == 0, result.stderr
        assert path.stat().st_mode & 0o777 == 0o600, oct(path.stat().st_mode)
    a, b = read_env_file(first), read_env_file(second)
    assert required_variables <= set(a), f"not generated: {sorted(required_variables - set(a))}"
    for name in required_variables:
        assert a[name] and a[name] != b[name], f"{name}: {a[name]!r} is not freshly drawn"
        # No quoting needed, no $ for Compose to interpolate, safe inside the database URLs.
        assert re.fullmatch(r"[A-Za-z0-9_-]+=*", a[name]), f"{name}: {a[name]!r}"
        assert len(a[name]) >= 32, f"{name} is short: {len(a[name])} characters"
    assert len({a[name] for name in required_variables}) == len(required_variables), "a value is reused"
    key = a["AIRFLOW__CORE__FERNET_KEY"]
    assert len(base64.urlsafe_b64decode(key.encode())) == 32, "a Fernet key is 32 bytes, URL-safe base64"
    fernet = pytest.importorskip("cryptography.fernet")
    assert fernet.Fernet(key).decrypt(fernet.Fernet(key).encrypt(b"conn")) == b"conn"
    # bi_reader's password must pass the rule the init script and recflow.warehouse.grants apply.
    from recflow.warehouse import grants

    assert grants._PASSWORD.fullmatch(a[grants.PASSWORD_ENV])


def test_generator_never_overwrites_an_existing_file(tmp_path):
    path = tmp_path / ".env"
    path.write_text("WAREHOUSE_PASSWORD=the-one-the-accounts-have\n")
    path.chmod(0o640)
    result = generate_env(path)
    assert result.returncode == 1, result
    assert "exists" in result.stderr and str(path) in result.stderr, result.stderr
    assert path.read_text() == "WAREHOUSE_PASSWORD=the-one-the-accounts-have\n"
    assert path.stat().st_mode & 0o777 == 0o640


def test_local_stack_is_one_command_and_renders(tmp_path):
    """scripts/compose_local.sh in a copy of the project: it writes .env (mode 600) and the
    inputs folder, and hands the rest to docker compose, which renders the file with them; a
    second run keeps the .env."""
    require_docker_compose()
    project = tmp_path / "project"
    (project / "scripts").mkdir(parents=True)
    shutil.copy(COMPOSE_FILE, project / COMPOSE_FILE.name)
    for script in (COMPOSE_ENV_SCRIPT, COMPOSE_LOCAL_SCRIPT):
        shutil.copy(script, project / "scripts" / script.name)
    names = compose_variables()
    env = {
        key: value for key, value in os.environ.items() if not key.startswith("COMPOSE_") and key not in names
    }
    env["RECFLOW_PYTHON"] = sys.executable

    def local(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["bash", str(project / "scripts" / COMPOSE_LOCAL_SCRIPT.name), *args],
            env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip

    result = local("config")
    assert result.returncode == 0, result.stdout + result.stderr
    dot_env = project / ".env"
    assert dot_env.stat().st_mode & 0o777 == 0o600
    assert (project / "data" / "inputs").is_dir()
    rendered = yaml.safe_load(result.stdout)
    assert set(published_host_ips(rendered)) and all(
        set(addresses) == {LOOPBACK} for addresses in published_host_ips(rendered).values()
    ), published_host_ips(rendered)
    generated = read_env_file(dot_env)
    assert environment(rendered["services"]["warehouse"])["MYSQL_PASSWORD"] == generated["WAREHOUSE_PASSWORD"]
    before = dot_env.read_text()
    assert local("config", "-q").returncode == 0
    assert dot_env.read_text() == before, "a second run rewrote .env"


def test_env_example_lists_every_variable_compose_reads(raw_compose, required_variables):
    """Required variables: an empty NAME= line under a REQUIRED comment (so a copied
    .env.example refuses to start until filled in, and holds no secret). Optional ones: a
    commented NAME=default line with the file's own default."""
    lines = ENV_EXAMPLE.read_text(encoding="utf-8").splitlines()
    defaults: dict[str, set[str]] = {}
    for _, name, op, arg in references(raw_compose):
        if op in (":-", "-"):
            defaults.setdefault(name, set()).add(arg)
    # name -> [(commented out?, value, the comment lines just above)]
    listed: dict[str, list[tuple[bool, str, str]]] = {}
    comment: list[str] = []
    for line in lines:
        match = re.fullmatch(r"(#\s*)?([A-Za-z_][A-Za-z0-9_]*)=(.*)", line.strip())
        if match:
            listed.setdefault(match[2], []).append((bool(match[1]), match[3], "\n".join(comment)))
        comment = comment + [line] if line.startswith("#") and not match else []
    every = {name for _, name, _, _ in references(raw_compose)}
    assert every <= set(listed), f".env.example does not list: {sorted(every - set(listed))}"
    for name in required_variables:
        assert any(
            not commented and value == "" and "REQUIRED" in above for commented, value, above in listed[name]
        ), f"{name}: expected an empty '{name}=' line under a '# REQUIRED' comment, got {listed[name]}"
    for name, values in defaults.items():
        commented = {value for is_comment, value, _ in listed[name] if is_comment}
        assert values & commented, f".env.example shows {name}={commented}, the file's default is {values}"
    for name in SECRET_VARIABLES:
        assert all(value == "" for _, value, _ in listed[name]), f".env.example gives {name} a value"


def test_init_script_grants_the_publish_account_what_the_watchdog_needs(tmp_path):
    """Run the init script as the mysql entrypoint sources it, with its SQL client replaced by a
    recorder, and read what it sent: the app account (MYSQL_USER) may see which session blocks a
    publish (PROCESS; the sys views, which are SQL SECURITY INVOKER and call sys functions; the
    performance_schema tables under them) and end a read-only one (CONNECTION_ADMIN)."""
    (tmp_path / "sql" / "mysql").mkdir(parents=True)
    (tmp_path / "sql" / "grants").mkdir()
    (tmp_path / "sql" / "mysql" / "001_core.sql").write_text("SELECT 1;\n")
    shutil.copy(REPO / "sql" / "grants" / "bi_reader.sql", tmp_path / "sql" / "grants" / "bi_reader.sql")
    sent = tmp_path / "sent.sql"
    scripts = sorted(INITDB_DIR.glob("*.sh"))
    assert scripts
    for script in scripts:
        text = script.read_text(encoding="utf-8")
        text, replaced = re.subn(r"(?m)^recflow_sql_root=\S+$", f"recflow_sql_root={tmp_path / 'sql'}", text)
        assert replaced == 1, f"{script.name}: no recflow_sql_root= line"
        (tmp_path / script.name).write_text(text)
    harness = "\n".join(
        [
            "set -eo pipefail",  # as the entrypoint runs
            'docker_process_sql() { cat >>"$SENT"; echo >>"$SENT"; }',
            "mysql_note() { :; }",
            'mysql_error() { echo "ERROR: $*" >&2; exit 1; }',
            *[f'source "{tmp_path / script.name}"' for script in scripts],
        ]
    )
    result = subprocess.run(
        ["bash", "-c", harness],
        env={"PATH": os.environ["PATH"], "SENT": str(sent), "MYSQL_USER": "recflow",
             "RECFLOW_BI_READER_PASSWORD": "pw-" + "x" * 20, "RECFLOW_BI_READER_HOST": "172.16.0.0/255.240.0.0"},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    statements = {" ".join(s.split()) for s in sent.read_text().split(";")}
    account = "'recflow'@'%'"
    for grant in (
        f"GRANT PROCESS, CONNECTION_ADMIN ON *.* TO {account}",
        f"GRANT SELECT, EXECUTE ON sys.* TO {account}",
        f"GRANT SELECT ON performance_schema.* TO {account}",
    ):
        assert grant in statements, f"the init script never sends: {grant}"
    # Nothing more on *.* than those two: the pipeline's account stays an ordinary one.
    global_grants = [s for s in statements if re.search(r"\bON \*\.\*", s)]
    assert global_grants == [f"GRANT PROCESS, CONNECTION_ADMIN ON *.* TO {account}"], global_grants
    text = "".join(script.read_text(encoding="utf-8") for script in scripts)
    assert "sys.innodb_lock_waits" in text and "end a read-only one" in text, "the grants lack their why"
