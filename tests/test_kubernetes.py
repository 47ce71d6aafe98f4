"""deploy/kubernetes/ validates against Kubernetes' schemas (strict) and agrees with the code."""

from __future__ import annotations

import copy
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from service.app import create_app
from service.settings import ServiceSettings

ROOT = Path(__file__).resolve().parents[1] / "deploy" / "kubernetes"
K8S_VERSION = "1.37.0"


def manifests() -> dict[str, dict]:
    kustomization = yaml.safe_load((ROOT / "kustomization.yaml").read_text())
    return {name: yaml.safe_load((ROOT / name).read_text()) for name in kustomization["resources"]}


def by_kind(docs: dict[str, dict]) -> dict[str, dict]:
    return {doc["kind"]: doc for doc in docs.values()}


def problems(docs: dict[str, dict], red_model: Path) -> list[str]:
    """What in the manifests disagrees with the service's code."""
    kinds, found = by_kind(docs), []
    settings = {f"CARMASK_{name.upper()}" for name in ServiceSettings.model_fields}
    config = kinds["ConfigMap"]["data"]
    found += [f"ConfigMap: {key} is not a setting" for key in sorted(set(config) - settings)]
    pod = kinds["Deployment"]["spec"]["template"]
    container = pod["spec"]["containers"][0]
    routes = {getattr(r, "path", None) for r in create_app(ServiceSettings(model=red_model)).routes}
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        path = container[probe]["httpGet"]["path"]
        if path not in routes:
            found.append(f"{probe}: {path} is no endpoint")
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    if ports.get("http") != int(config.get("CARMASK_PORT", 8000)):
        found.append(f"containerPort {ports.get('http')} is not CARMASK_PORT {config.get('CARMASK_PORT')}")
    labels = pod["metadata"]["labels"]
    for kind in ("Service", "PodDisruptionBudget"):
        selector = kinds[kind]["spec"]["selector"]
        selector = selector.get("matchLabels", selector)
        if any(labels.get(k) != v for k, v in selector.items()):
            found.append(f"{kind} selector {selector} does not select the pods {labels}")
    if kinds["HorizontalPodAutoscaler"]["spec"]["scaleTargetRef"]["name"] != kinds["Deployment"]["metadata"]["name"]:
        found.append("the HPA scales another Deployment")
    pre_stop = int(container["lifecycle"]["preStop"]["exec"]["command"][-1])
    drain = pre_stop + float(
        config.get("CARMASK_REQUEST_TIMEOUT", ServiceSettings.model_fields["request_timeout"].default)
    )
    if pod["spec"]["terminationGracePeriodSeconds"] <= drain:
        found.append(f"terminationGracePeriodSeconds must exceed preStop + request timeout ({drain:g} s)")
    return found


@pytest.mark.parametrize("name", sorted(manifests()))
def test_manifest_validates_strictly(name):
    kubernetes_validate.validate(manifests()[name], K8S_VERSION, strict=True)


def test_manifests_agree_with_the_code(red_model):
    assert problems(manifests(), red_model) == []


def test_a_broken_manifest_is_caught(red_model):
    docs = manifests()
    broken = copy.deepcopy(docs)
    deployment = next(d for d in broken.values() if d["kind"] == "Deployment")
    deployment["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["path"] = "/readyz"
    assert problems(broken, red_model) == ["readinessProbe: /readyz is no endpoint"]
    deployment["spec"]["replicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, K8S_VERSION, strict=True)
    config = next(d for d in broken.values() if d["kind"] == "ConfigMap")
    config["data"]["CARMASK_WORKERS"] = "4"
    assert "ConfigMap: CARMASK_WORKERS is not a setting" in problems(broken, red_model)


def test_the_manifests_security_settings():
    deployment = by_kind(manifests())["Deployment"]["spec"]["template"]["spec"]
    container = deployment["containers"][0]
    assert deployment["securityContext"]["runAsNonRoot"] and deployment["securityContext"]["runAsUser"] == 10001
    assert container["securityContext"]["readOnlyRootFilesystem"]
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert any(m["mountPath"] == "/tmp" for m in container["volumeMounts"])  # the only writable place
