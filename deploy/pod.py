"""The Kubernetes manifests (deploy/k8s), rendered by kustomize, and their pod as `podman run` flags."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import yaml

ROOT = Path(__file__).resolve().parent.parent
K8S = ROOT / "deploy" / "k8s"
OVERLAYS = ("dev", "prod", "canary")
APP = "wine-quality"

Manifest = dict[str, Any]

_UNITS = {"": 1, "k": 10**3, "M": 10**6, "G": 10**9, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "m": 10**-3}


def quantity(value: str | int | float) -> float:
    """A Kubernetes quantity as a number: '640Mi' -> bytes, '500m' -> 0.5 (CPU cores)."""
    found = re.fullmatch(r"([0-9.]+)([a-zA-Z]*)", str(value))
    if not found or found.group(2) not in _UNITS:
        raise ValueError(f"not a Kubernetes quantity this code reads: {value!r}")
    return float(found.group(1)) * _UNITS[found.group(2)]


def render(overlay: str = "dev") -> list[Manifest]:
    """`kubectl kustomize deploy/k8s/overlays/<overlay>`, as a list of objects."""
    kubectl = shutil.which("kubectl")
    if not kubectl:
        raise RuntimeError("kubectl is needed to render deploy/k8s (kubectl kustomize); it is not on PATH")
    done = subprocess.run(
        [kubectl, "kustomize", str(K8S / "overlays" / overlay)], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"kubectl kustomize {overlay} failed:\n{done.stderr}")
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


def named(obj: Manifest, name: str) -> bool:
    """Whether the object is called name: exactly, or with the hash suffix of a generated ConfigMap or Secret."""
    actual = obj["metadata"]["name"]
    generated = obj["kind"] in ("ConfigMap", "Secret") and re.fullmatch(re.escape(name) + r"-[a-z0-9]{10}", actual)
    return actual == name or bool(generated)


def find(objects: list[Manifest], kind: str, name: str | None = None) -> Manifest:
    """The one object of that kind (and that name, a generated ConfigMap's or Secret's hash suffix aside)."""
    hits = [o for o in objects if o["kind"] == kind and (name is None or named(o, name))]
    if len(hits) != 1:
        raise LookupError(f"{len(hits)} {kind} objects named {name or '*'}")
    return hits[0]


class SecretRef(NamedTuple):
    """An environment variable the kubelet fills from a Secret's key."""

    var: str
    secret: str
    key: str
    optional: bool


@dataclass(frozen=True)
class Pod:
    """What a container of the Deployment gets: the pod spec, its container and the ConfigMaps it reads."""

    spec: Manifest
    container: Manifest
    config_maps: dict[str, dict[str, str]]

    @classmethod
    def of(cls, objects: list[Manifest], deployment: str = APP) -> Pod:
        spec = find(objects, "Deployment", deployment)["spec"]["template"]["spec"]
        maps = {o["metadata"]["name"]: o.get("data", {}) for o in objects if o["kind"] == "ConfigMap"}
        return cls(spec, spec["containers"][0], maps)

    @property
    def port(self) -> int:
        return int(self.container["ports"][0]["containerPort"])

    def probe_path(self, probe: str) -> str:
        """The HTTP path of readinessProbe, livenessProbe or startupProbe."""
        return str(self.container[probe]["httpGet"]["path"])

    def env(self) -> dict[str, str]:
        """The environment Kubernetes gives the container: ConfigMaps and plain values (Secrets: secret_refs)."""
        env: dict[str, str] = {}
        for source in self.container.get("envFrom", []):
            env.update(self.config_maps[source["configMapRef"]["name"]])
        for var in self.container.get("env", []):
            if "value" in var:
                env[var["name"]] = str(var["value"])
        return env

    def secret_refs(self) -> list[SecretRef]:
        """The variables the container reads from Secrets."""
        refs = [(v["name"], v.get("valueFrom", {}).get("secretKeyRef")) for v in self.container.get("env", [])]
        return [SecretRef(var, r["name"], r["key"], bool(r.get("optional", False))) for var, r in refs if r]

    def podman_flags(self, limits: bool = True, secrets: Mapping[str, list[str]] | None = None) -> list[str]:
        """`podman run` flags that run the image as the kubelet would: same user, read-only root filesystem,
        emptyDir volumes, capabilities, environment and (with limits) the memory and CPU limits. `secrets` gives,
        for a variable read from a Secret, the flags that pass its value; a Secret that is not optional must be
        given (the kubelet would not start the container either)."""
        context = {**self.spec.get("securityContext", {}), **self.container.get("securityContext", {})}
        flags: list[str] = []
        if "runAsUser" in context:
            flags.append(f"--user={context['runAsUser']}:{context.get('runAsGroup', context['runAsUser'])}")
        if context.get("readOnlyRootFilesystem"):
            flags += ["--read-only", "--read-only-tmpfs=false"]
        flags += [f"--cap-drop={cap}" for cap in context.get("capabilities", {}).get("drop", [])]
        if context.get("allowPrivilegeEscalation") is False:
            flags.append("--security-opt=no-new-privileges")
        empty_dirs = {v["name"] for v in self.spec.get("volumes", []) if "emptyDir" in v}
        for mount in self.container.get("volumeMounts", []):
            if mount["name"] not in empty_dirs:
                raise ValueError(f"volume {mount['name']} is not an emptyDir: podman cannot stand in for it here")
            # An anonymous volume, like an emptyDir: writable by the container's user, kept across restarts of the
            # container, removed with it (`rm -v`). Not a tmpfs: podman 4.3 loses a tmpfs's mode on restart.
            flags.append(f"--volume={mount['mountPath']}")
        flags += [f"--env={name}={value}" for name, value in self.env().items()]
        for ref in self.secret_refs():
            if ref.var in (secrets or {}):
                flags += (secrets or {})[ref.var]
            elif not ref.optional:
                raise ValueError(f"{ref.var} needs the Secret {ref.secret} (key {ref.key}), and none was given")
        if limits:
            given = self.container.get("resources", {}).get("limits", {})
            if "memory" in given:
                flags.append(f"--memory={int(quantity(given['memory']))}")
            if "cpu" in given:
                flags.append(f"--cpus={quantity(given['cpu']):g}")
        return flags
