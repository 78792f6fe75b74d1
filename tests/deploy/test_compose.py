"""docker-compose.yaml, docker/*.Dockerfile and .dockerignore, checked against the code they deploy.

No container engine runs here, so nothing is started or built. Instead:

- docker-compose (Debian's 1.29.2) parses the file as `docker compose` would, and the file is
  validated against the Compose Specification schema that ships with it;
- the structure is compared with what the code computes or reads: the paths the DAG and
  recflow.config derive from their own location, the RECFLOW_* variables the code reads, the
  master URL the Spark provider builds from the connection, the engine make_engine builds from the
  warehouse URL, the versions uv.lock pins.

Structural checks read the file with PyYAML and apply the `${VAR:-default}` defaults, i.e. they
check what a fresh checkout without a .env gets.
"""

from __future__ import annotations

import ast
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
    "airflow-init",
    *AIRFLOW_SERVICES,
}
# Settings that must reach the Airflow containers, or the code silently falls back to an embedded
# SQLite warehouse and a data folder inside the image. Both must be read by recflow/config.py.
REQUIRED_RECFLOW_VARIABLES = ("RECFLOW_WAREHOUSE_URL", "RECFLOW_DATA_DIR")
SPARK_MASTER_CLASS = "org.apache.spark.deploy.master.Master"
SPARK_WORKER_CLASS = "org.apache.spark.deploy.worker.Worker"

_VARIABLE = re.compile(r"\$(?:\$|\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\})")


# --- reading the files -----------------------------------------------------------------------


def interpolate(value: Any, env: dict[str, str]) -> Any:
    """Compose's variable substitution, recursively: ${VAR}, ${VAR:-default}, ${VAR-default}, $$."""
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
        return current or ""

    return _VARIABLE.sub(substitute, value)


@pytest.fixture(scope="module")
def raw_text() -> str:
    return COMPOSE_FILE.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def compose(raw_text) -> dict:
    """The compose file as a fresh checkout gets it: anchors merged, variables at their defaults."""
    return interpolate(yaml.safe_load(raw_text), env={})


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


# --- 1. the file parses, as docker-compose reads it, and matches the Compose Specification ------


def test_docker_compose_parses_the_file():
    docker_compose = require_docker_compose()
    env = {key: value for key, value in os.environ.items() if not key.startswith("COMPOSE_")}
    result = subprocess.run(
        [docker_compose, "-f", COMPOSE_FILE.name, "config", "-q"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
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
    assert "8080:8080" in [str(port) for port in services["airflow-apiserver"].get("ports", [])]
    assert services["airflow-init"].get("environment", {}).get("_AIRFLOW_DB_MIGRATE") == "true"


def test_bind_mounts_exist_in_the_repository_and_named_volumes_are_declared(compose, services):
    declared = set(compose.get("volumes") or {})
    for name, service in services.items():
        for source, _target in volumes(service):
            if is_bind(source):
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


def test_recflow_variables_are_the_ones_the_code_reads(raw_text, services):
    set_in_compose = {
        key for service in services.values() for key in environment(service) if key.startswith("RECFLOW_")
    }
    interpolated = set(re.findall(r"\$\{(RECFLOW_\w+)", raw_text))
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
    assert env.get(grants.PASSWORD_ENV), f"{grants.PASSWORD_ENV} has no default"
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
