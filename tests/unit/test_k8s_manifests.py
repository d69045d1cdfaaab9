"""The Kubernetes manifests (deploy/k8s) as `make k8s` renders them: valid objects that fit the service and image.

Every overlay (dev, prod, canary) is rendered offline with `kubectl kustomize` and validated against the Kubernetes
1.32 OpenAPI schemas (kubernetes-validate, strict: an unknown field is an error). One test asks a real `bentoml serve`
for the probe paths.
"""

from __future__ import annotations

import base64
import shutil
import subprocess
from importlib import resources
from typing import Any
from urllib.parse import urlsplit

import httpx
import kubernetes_validate
import pytest
import yaml

from deploy.image import IMAGE_NAME
from deploy.pod import APP, OVERLAYS, ROOT, Manifest, Pod, find, quantity, render
from harness.devserver import Server
from wine_quality.settings import Settings, env_names

KUBERNETES_VERSION = "1.32.0"  # the kubectl on these machines; every object is checked against this API
KINDS = {"Namespace", "ConfigMap", "Service", "Deployment", "HorizontalPodAutoscaler", "PodDisruptionBudget"}
CUSTOM_KINDS = {"ServiceMonitor"}  # CRDs (Prometheus Operator): no schema in Kubernetes; checked by hand below
PROBES = ("startupProbe", "readinessProbe", "livenessProbe")
WORKLOADS = ("Deployment", "StatefulSet")
CHALLENGER = f"{APP}-canary"

pytestmark = pytest.mark.skipif(not shutil.which("kubectl"), reason="kubectl renders the manifests (kustomize)")


@pytest.fixture(scope="module", params=OVERLAYS)
def overlay(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def objects(overlay: str) -> list[Manifest]:
    return render(overlay)


@pytest.fixture(scope="module")
def pod(objects: list[Manifest]) -> Pod:
    return Pod.of(objects)


def bentoml_defaults() -> dict[str, Any]:
    """BentoML's default configuration (what the image serves with: the bento sets no other port)."""
    text = resources.files("bentoml._internal.configuration.v2").joinpath("default_configuration.yaml").read_text()
    return yaml.safe_load(text)  # type: ignore[no-any-return]


def test_every_object_is_valid_for_kubernetes(objects: list[Manifest]) -> None:
    """Each object passes the Kubernetes 1.32 schema of its kind, strictly (a misspelt field fails)."""
    assert {o["kind"] for o in objects} >= KINDS
    for obj in objects:
        if obj["kind"] in CUSTOM_KINDS:
            continue
        try:
            kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{obj['kind']}/{obj['metadata']['name']}: {exc.message} at {list(exc.absolute_path)}")


def test_image_is_the_one_make_image_builds(pod: Pod) -> None:
    """deploy/image.py tags `wine-quality:latest` (and the bento version); make's IMAGE default is the same."""
    assert pod.container["image"] == f"{IMAGE_NAME}:latest"
    asked = subprocess.run(  # make's own value of IMAGE, as `make image` and `make replicas` use it
        ["make", "-s", "--no-print-directory", "-f", "Makefile", "-f", "-", "print-image"],
        input="print-image:\n\t@echo $(IMAGE)\n",
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert asked.stdout.strip() == f"{IMAGE_NAME}:latest", asked.stderr
    # a local image must not be pulled (`latest` would default to Always)
    assert pod.container["imagePullPolicy"] == "IfNotPresent"


def test_make_k8s_pins_a_registry_image() -> None:
    """`make k8s K8S_IMAGE=...` renders the overlay with that image; a name without a tag is refused."""
    pinned = "registry.example.com:5000/team/wine-quality:1a2b3c"
    done = subprocess.run(
        ["make", "-s", "k8s", "OVERLAY=prod", f"K8S_IMAGE={pinned}"], cwd=ROOT, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    objects = [o for o in yaml.safe_load_all(done.stdout) if o]
    assert Pod.of(objects).container["image"] == pinned
    assert find(objects, "HorizontalPodAutoscaler")["spec"]["minReplicas"] == 3  # still the prod overlay
    untagged = subprocess.run(
        ["make", "-s", "k8s", "K8S_IMAGE=registry.example.com:5000/team/wine-quality"], cwd=ROOT, capture_output=True
    )
    assert untagged.returncode != 0


def test_ports_are_the_service_port(objects: list[Manifest], pod: Pod) -> None:
    """The container port is BentoML's HTTP port (3000), and the Service, probes and scrape annotations use it."""
    assert pod.port == bentoml_defaults()["services"]["http"]["port"] == 3000
    assert not {"PORT", "BENTOML_PORT"} & set(pod.env()), "the server would listen elsewhere"
    named = pod.container["ports"][0]["name"]
    service = find(objects, "Service", "wine-quality")
    assert [p["targetPort"] for p in service["spec"]["ports"]] == [named]
    assert {pod.container[p]["httpGet"]["port"] for p in PROBES} == {named}
    annotations = find(objects, "Deployment", APP)["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == str(pod.port)


def test_grace_period_is_the_pause_and_the_drain(pod: Pod, monkeypatch: pytest.MonkeyPatch) -> None:
    """SIGKILL comes just after the preStop pause and the server's drain (the longest request, WINE_REQUEST_TIMEOUT_S,
    and the model services' last answers): derived from the request timeout the pod runs with."""
    for key, value in pod.env().items():
        monkeypatch.setenv(key, value)
    pause = float(pod.container["lifecycle"]["preStop"]["exec"]["command"][-1])
    assert pod.spec["terminationGracePeriodSeconds"] == pause + Settings().requests.drain_s


def test_settings_are_real_settings_with_valid_values(pod: Pod) -> None:
    """Every WINE_* key of the ConfigMap is a field of wine_quality.settings (a typo would be ignored silently)
    and its value passes that field's validation."""
    env = {k: v for k, v in pod.env().items() if k.startswith("WINE_")}
    assert env
    names = {name for group in Settings.model_fields.values() for name in env_names(group.annotation)}
    assert set(env) <= names, f"not settings: {sorted(set(env) - names)}"
    with pytest.MonkeyPatch.context() as patch:
        for key, value in env.items():
            patch.setenv(key, value)
        Settings()
    assert not set(pod.env()) - set(env) - {"BENTOML_HOME"}, "only WINE_* settings and BENTOML_HOME are set"


def test_api_key_comes_from_an_optional_secret(pod: Pod) -> None:
    """WINE_API_KEY is read from a Secret, never written in the manifests, and the pod starts without it."""
    var = next(v for v in pod.container["env"] if v["name"] == "WINE_API_KEY")
    assert var["valueFrom"]["secretKeyRef"]["optional"] is True
    assert "WINE_API_KEY" not in pod.env()


def test_capture_database_url_comes_from_a_secret(overlay: str, objects: list[Manifest]) -> None:
    """Every pod of the service reads WINE_CAPTURE_URL from the Secret wine-quality-capture, never from a plain
    value; prod (and the canary built on it) requires the Secret, the dev overlay generates it."""
    for deployment in (o for o in objects if o["kind"] == "Deployment"):
        refs = {r.var: r for r in Pod.of(objects, deployment["metadata"]["name"]).secret_refs()}
        assert refs["WINE_CAPTURE_URL"].key == "url"
        assert refs["WINE_CAPTURE_URL"].optional is (overlay == "dev")
        generated = [o for o in objects if o["kind"] == "Secret"]
        if overlay == "dev":
            assert (
                refs["WINE_CAPTURE_URL"].secret == find(generated, "Secret", "wine-quality-capture")["metadata"]["name"]
            )
        else:
            assert refs["WINE_CAPTURE_URL"].secret == "wine-quality-capture" and not generated
    assert "WINE_CAPTURE_URL" not in Pod.of(objects).env()


def test_pod_meets_the_restricted_pod_security_standard(objects: list[Manifest]) -> None:
    """Every pod (the service's, and the dev overlay's PostgreSQL): non-root, no privilege escalation, no
    capabilities, default seccomp, read-only root, no API token."""
    workloads = [o for o in objects if o["kind"] in WORKLOADS]
    assert workloads
    for workload in workloads:
        spec = workload["spec"]["template"]["spec"]
        for container in spec["containers"]:
            context = {**spec["securityContext"], **container["securityContext"]}
            assert context["runAsNonRoot"] is True and context["runAsUser"] > 0
            assert context["allowPrivilegeEscalation"] is False
            assert context["capabilities"]["drop"] == ["ALL"] and "add" not in context["capabilities"]
            assert context["seccompProfile"]["type"] == "RuntimeDefault"
            assert context["readOnlyRootFilesystem"] is True
        assert spec["automountServiceAccountToken"] is False
    namespace = find(objects, "Namespace")
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    assert all(o["metadata"].get("namespace") == namespace["metadata"]["name"] for o in objects if o is not namespace)


def test_where_bentoml_writes_is_a_volume(pod: Pod) -> None:
    """BentoML writes its home (store folders, Prometheus multiprocess files) and temporary files (Unix sockets),
    capture its SQLite file when no database URL is given; with a read-only root all must be emptyDir mounts (the
    e2e test runs the image this way)."""
    mounts = {m["mountPath"] for m in pod.container["volumeMounts"]}
    assert {pod.env()["BENTOML_HOME"], "/tmp", pod.env()["WINE_CAPTURE_DIR"]} <= mounts
    assert all("emptyDir" in v for v in pod.spec["volumes"])


def test_selectors_find_the_pods(objects: list[Manifest], pod: Pod) -> None:
    """The Service, PodDisruptionBudget, spread constraints and HPA all point at this Deployment's pods."""
    deployment = find(objects, "Deployment", APP)
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert find(objects, "Service", APP)["spec"]["selector"].items() <= labels.items()
    assert find(objects, "PodDisruptionBudget")["spec"]["selector"]["matchLabels"].items() <= labels.items()
    for spread in pod.spec["topologySpreadConstraints"]:
        assert spread["labelSelector"]["matchLabels"].items() <= labels.items()
    target = find(objects, "HorizontalPodAutoscaler")["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", deployment["metadata"]["name"])
    assert "replicas" not in deployment["spec"], "the HPA owns the replica count"


def test_autoscaling_and_disruptions_fit_the_resources(objects: list[Manifest], pod: Pod) -> None:
    """CPU utilisation needs a CPU request; limits are at or above requests; a drain keeps a replica serving."""
    hpa = find(objects, "HorizontalPodAutoscaler")["spec"]
    assert [m["resource"]["name"] for m in hpa["metrics"]] == ["cpu"]
    requests, limits = pod.container["resources"]["requests"], pod.container["resources"]["limits"]
    assert quantity(requests["cpu"]) > 0
    assert all(quantity(limits[r]) >= quantity(requests[r]) for r in ("cpu", "memory"))
    assert 1 <= hpa["minReplicas"] <= hpa["maxReplicas"]
    unavailable = find(objects, "PodDisruptionBudget")["spec"]["maxUnavailable"]
    assert hpa["minReplicas"] == 1 or unavailable < hpa["minReplicas"]


def test_service_monitor_scrapes_the_service() -> None:
    """The prod overlay's ServiceMonitor selects the Service and names its port."""
    objects = render("prod")
    monitor, service = find(objects, "ServiceMonitor"), find(objects, "Service")
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert {e["port"] for e in monitor["spec"]["endpoints"]} <= {p["name"] for p in service["spec"]["ports"]}
    assert {e["path"] for e in monitor["spec"]["endpoints"]} == {"/metrics"}


@pytest.mark.integration
def test_probe_and_scrape_paths_are_served(objects: list[Manifest], pod: Pod, server: Server) -> None:
    """A real `bentoml serve` of the service answers 200 on every probe path and on the scrape path."""
    annotations = find(objects, "Deployment", APP)["spec"]["template"]["metadata"]["annotations"]
    paths = {pod.probe_path(p) for p in PROBES} | {annotations["prometheus.io/path"]}
    for path in sorted(paths):
        reply = httpx.get(f"{server.url}{path}", timeout=10)
        assert reply.status_code == 200, f"{path}: {reply.status_code}"


def test_dev_runs_postgresql_with_a_volume() -> None:
    """The dev overlay's PostgreSQL: a StatefulSet keeping its data on a volume claimed per pod, behind a headless
    Service; its credentials come from the same generated Secret as the service's URL, which names that Service, its
    port and the database; the service's own selectors leave its pod alone."""
    objects = render("dev")
    database = find(objects, "StatefulSet", "wine-quality-postgres")
    service = find(objects, "Service", "wine-quality-postgres")
    secret = find(objects, "Secret", "wine-quality-capture")
    assert database["spec"]["serviceName"] == service["metadata"]["name"]
    assert service["spec"]["clusterIP"] == "None"
    (claim,) = database["spec"]["volumeClaimTemplates"]
    container = database["spec"]["template"]["spec"]["containers"][0]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    plain = {v["name"]: v["value"] for v in container["env"] if "value" in v}
    assert plain["PGDATA"].startswith(mounts[claim["metadata"]["name"]] + "/")
    values = {key: base64.b64decode(value).decode() for key, value in secret["data"].items()}
    from_secret = {v["name"]: v["valueFrom"]["secretKeyRef"] for v in container["env"] if "valueFrom" in v}
    assert {ref["name"] for ref in from_secret.values()} == {secret["metadata"]["name"]}
    env = {name: values[ref["key"]] for name, ref in from_secret.items()}
    url = urlsplit(values["url"])
    assert (url.username, url.password) == (env["POSTGRES_USER"], env["POSTGRES_PASSWORD"])
    assert url.path == f"/{env['POSTGRES_DB']}"
    assert url.hostname == service["metadata"]["name"]
    assert url.port == service["spec"]["ports"][0]["port"] == container["ports"][0]["containerPort"]
    labels = database["spec"]["template"]["metadata"]["labels"]
    assert not find(objects, "Service", APP)["spec"]["selector"].items() <= labels.items()
    assert not find(objects, "PodDisruptionBudget")["spec"]["selector"]["matchLabels"].items() <= labels.items()


def test_canary_serves_the_challenger_beside_the_champion() -> None:
    """The canary overlay: prod's champion and a second Deployment running the challenger's image from one pod,
    both behind the one Service, each Deployment selecting only its own pods (told apart by `track`), the
    autoscaler on the champion only, both scraped with their track, sharing the settings and the capture Secret."""
    objects = render("canary")
    champion, challenger = find(objects, "Deployment", APP), find(objects, "Deployment", CHALLENGER)
    pods = {d["metadata"]["name"]: d["spec"]["template"]["metadata"]["labels"] for d in (champion, challenger)}
    assert (pods[APP]["track"], pods[CHALLENGER]["track"]) == ("champion", "challenger")
    service = find(objects, "Service", APP)
    assert [o["metadata"]["name"] for o in objects if o["kind"] == "Service"] == [APP]
    for deployment, other in ((champion, challenger), (challenger, champion)):
        name = deployment["metadata"]["name"]
        assert service["spec"]["selector"].items() <= pods[name].items()
        assert not deployment["spec"]["selector"]["matchLabels"].items() <= pods[other["metadata"]["name"]].items()
    assert find(objects, "HorizontalPodAutoscaler")["spec"]["scaleTargetRef"]["name"] == APP
    assert 1 <= challenger["spec"]["replicas"] < find(objects, "HorizontalPodAutoscaler")["spec"]["minReplicas"]
    images = {name: Pod.of(objects, name).container["image"] for name in (APP, CHALLENGER)}
    assert images == {APP: f"{IMAGE_NAME}:latest", CHALLENGER: f"{IMAGE_NAME}-challenger:latest"}
    for name in (APP, CHALLENGER):
        annotations = find(objects, "Deployment", name)["spec"]["template"]["metadata"]["annotations"]
        assert annotations["prometheus.io/scrape"] == "true"
    monitor = find(objects, "ServiceMonitor")
    assert "track" in monitor["spec"]["podTargetLabels"]
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert Pod.of(objects, CHALLENGER).env() == Pod.of(objects, APP).env()
    assert Pod.of(objects, CHALLENGER).secret_refs() == Pod.of(objects, APP).secret_refs()


def test_make_k8s_pins_the_challengers_image_apart() -> None:
    """`make k8s OVERLAY=canary K8S_IMAGE=... K8S_CHALLENGER_IMAGE=...` sets each Deployment's image, even when
    both are tags of one repository."""
    champion, challenger = (
        "registry.example.com:5000/team/wine-quality:1.0",
        "registry.example.com:5000/team/wine-quality:1.1",
    )
    done = subprocess.run(
        ["make", "-s", "k8s", "OVERLAY=canary", f"K8S_IMAGE={champion}", f"K8S_CHALLENGER_IMAGE={challenger}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    objects = [o for o in yaml.safe_load_all(done.stdout) if o]
    assert Pod.of(objects).container["image"] == champion
    assert Pod.of(objects, CHALLENGER).container["image"] == challenger
