"""The Kubernetes manifests: generated parts match the code, every overlay builds with
kustomize, every rendered object passes its vendored schema, and the manifests keep the
promises docs/operations.md makes (probes, non-root, lag-bounded scaling, closed network)."""

import json
import re
import subprocess
from functools import cache
from typing import Any

import jsonschema
import pytest
import yaml

from deploy import manifests
from deploy.vendor_schemas import schema_file
from schemas.topics import TOPICS_BY_NAME
from tests.unit.deploy.settings_names import SETTINGS, variables
from tests.unit.deploy.tools import ROOT, tool

K8S = ROOT / "deploy" / "k8s"
SCHEMAS = K8S / "schemas"
OVERLAYS = sorted(path.name for path in (K8S / "overlays").iterdir() if path.is_dir())
SERVICES = ("ingest", "profile", "scoring", "notify")
SERVICE_PORTS = {"ingest": 8080, "profile": 8081, "scoring": 8082, "notify": 8083}
EXPOSED = {"retain-ingest", "retain-scoring"}  # the event API and the dashboard
OBJECT_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"

Manifest = dict[str, Any]


@cache
def rendered(overlay: str) -> tuple[Manifest, ...]:
    built = subprocess.run(
        [str(tool("kustomize")), "build", str(K8S / "overlays" / overlay)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert built.returncode == 0, built.stderr
    return tuple(document for document in yaml.safe_load_all(built.stdout) if document)


def _objects(overlay: str, kind: str) -> dict[str, Manifest]:
    return {o["metadata"]["name"]: o for o in rendered(overlay) if o["kind"] == kind}


def _container(deployment: Manifest) -> Manifest:
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    return container  # type: ignore[no-any-return]


@cache
def _validator(api_version: str, kind: str) -> jsonschema.Draft202012Validator:
    path = SCHEMAS / schema_file(api_version, kind)
    assert path.is_file(), f"no vendored schema for {api_version} {kind}: add it to {SCHEMAS}"
    return jsonschema.Draft202012Validator(json.loads(path.read_text("utf-8")))


@cache
def _object_meta() -> jsonschema.Draft202012Validator:
    definitions = json.loads((SCHEMAS / schema_file("apps/v1", "Deployment")).read_text("utf-8"))
    return jsonschema.Draft202012Validator(
        {"$defs": definitions["$defs"], "$ref": f"#/$defs/{OBJECT_META}"}
    )


def test_generated_manifests_match_the_code() -> None:
    assert manifests.drifted(manifests.GENERATED) == [], "run: python -m deploy.manifests"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_rendered_object_passes_its_schema(overlay: str) -> None:
    problems = []
    for manifest in rendered(overlay):
        name = f"{manifest['kind']}/{manifest['metadata']['name']}"
        for validator, document in (
            (_validator(manifest["apiVersion"], manifest["kind"]), manifest),
            (_object_meta(), manifest["metadata"]),
        ):
            problems += [
                f"{name}: {'.'.join(map(str, error.path)) or '<root>'}: {error.message}"
                for error in validator.iter_errors(document)
            ]
    assert not problems, "\n".join(problems)


def test_a_misspelt_field_fails_the_schema() -> None:
    deployment = json.loads(json.dumps(_objects("production", "Deployment")["retain-ingest"]))
    _container(deployment)["livenesProbe"] = _container(deployment).pop("livenessProbe")
    assert list(_validator("apps/v1", "Deployment").iter_errors(deployment))


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("service", SERVICES)
def test_each_service_runs_probed_bounded_and_unprivileged(overlay: str, service: str) -> None:
    deployment = _objects(overlay, "Deployment")[f"retain-{service}"]
    pod = deployment["spec"]["template"]["spec"]
    container = _container(deployment)
    assert container["args"] == [service]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["ports"][0]["containerPort"] == SERVICE_PORTS[service]
    assert {"cpu", "memory"} <= set(container["resources"]["requests"])
    assert {"cpu", "memory"} <= set(container["resources"]["limits"])
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert pod["automountServiceAccountToken"] is False
    budget = _objects(overlay, "PodDisruptionBudget")[f"retain-{service}"]
    assert (
        budget["spec"]["selector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"]
    )
    assert (
        _objects(overlay, "Service")[f"retain-{service}"]["spec"]["ports"][0]["port"]
        == (SERVICE_PORTS[service])
    )


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_setup_job_runs_the_setup_command(overlay: str) -> None:
    job = _objects(overlay, "Job")["retain-setup"]
    [container] = job["spec"]["template"]["spec"]["containers"]
    assert container["args"] == ["setup"]
    assert (
        container["image"] == _container(_objects(overlay, "Deployment")["retain-ingest"])["image"]
    )


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_ingest_scales_on_cpu_and_the_consumers_on_lag_within_their_partitions(
    overlay: str,
) -> None:
    autoscaler = _objects(overlay, "HorizontalPodAutoscaler")["retain-ingest"]
    assert autoscaler["spec"]["metrics"][0]["resource"]["name"] == "cpu"
    scaled = _objects(overlay, "ScaledObject")
    assert set(scaled) == {f"retain-{service}" for service in manifests.CONSUMERS}
    for name, scaled_object in scaled.items():
        triggers = scaled_object["spec"]["triggers"]
        partitions = [TOPICS_BY_NAME[t["metadata"]["topic"]].partitions for t in triggers]
        assert scaled_object["spec"]["maxReplicaCount"] <= max(partitions), name
        assert all(t["type"] == "kafka" for t in triggers)
        assert scaled_object["spec"]["scaleTargetRef"]["name"] in _objects(overlay, "Deployment")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_topic_is_a_kafka_topic_resource(overlay: str) -> None:
    topics = {t["spec"]["topicName"]: t for t in _objects(overlay, "KafkaTopic").values()}
    assert set(topics) == set(TOPICS_BY_NAME)
    for name, topic in topics.items():
        assert topic["spec"]["partitions"] == TOPICS_BY_NAME[name].partitions


def _commented_settings() -> set[str]:
    text = (K8S / "base" / "settings.env").read_text("utf-8")
    return set(re.findall(r"^#\s*(RETAIN_[A-Z0-9_]+)=", text, re.MULTILINE))


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("service", SERVICES)
def test_every_setting_a_service_reads_is_in_the_manifests(overlay: str, service: str) -> None:
    """Set in the ConfigMap, taken from the Secret, or listed (commented) as left unset."""
    container = _container(_objects(overlay, "Deployment")[f"retain-{service}"])
    [config_map] = [
        _objects(overlay, "ConfigMap")[ref["configMapRef"]["name"]]
        for ref in container["envFrom"]
        if "configMapRef" in ref
    ]
    present = set(config_map["data"]) | {v["name"] for v in container["env"]}
    present |= _commented_settings()
    missing = set(variables(SETTINGS[service])) - present
    assert not missing, f"{service} reads {sorted(missing)}: add them to settings.env or env"


def test_the_manifests_name_no_setting_that_nothing_reads() -> None:
    known = set().union(*(variables(settings) for settings in SETTINGS.values()))
    text = "\n".join(
        path.read_text("utf-8") for path in K8S.rglob("*") if path.suffix in {".yaml", ".env"}
    )
    unknown = set(re.findall(r"\bRETAIN_[A-Z0-9_]+\b", text)) - known
    assert not unknown, f"no service reads {sorted(unknown)}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_secrets_come_from_the_secret_never_the_config_map(overlay: str) -> None:
    for name, config_map in _objects(overlay, "ConfigMap").items():
        for key in config_map["data"]:
            assert not re.search(r"PASSWORD|TOKEN|SECRET|DATABASE_URL", key), (name, key)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_only_ingest_and_the_dashboard_are_reachable_from_outside(overlay: str) -> None:
    ingress = _objects(overlay, "Ingress")["retain"]
    backends = {
        path["backend"]["service"]["name"]
        for rule in ingress["spec"]["rules"]
        for path in rule["http"]["paths"]
    }
    assert backends == EXPOSED
    policies = _objects(overlay, "NetworkPolicy")
    deny = policies["retain-default-deny"]["spec"]
    assert deny["podSelector"] == {}
    assert set(deny["policyTypes"]) == {"Ingress", "Egress"}
    outside = policies["retain-ingress-from-outside"]["spec"]["podSelector"]
    assert set(outside["matchExpressions"][0]["values"]) == EXPOSED
    smtp = policies["retain-notify-egress-smtp"]["spec"]["podSelector"]["matchLabels"]
    assert smtp == {"app.kubernetes.io/name": "retain-notify"}


def test_the_vendored_schemas_are_documented() -> None:
    readme = (SCHEMAS / "README.md").read_text("utf-8")
    for path in sorted(SCHEMAS.glob("*.json")):
        prefix = re.sub(r"-[a-z]+\.json$", "", path.name)
        assert prefix.split("-")[0] in readme, f"{path.name}: say where it comes from"
