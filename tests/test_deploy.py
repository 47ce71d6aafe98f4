"""Static checks that keep the container files in step with the code (the image itself is built and
run by `make container-test`, which needs podman)."""

import re
import tomllib
from pathlib import Path

import yaml

from service.settings import ServiceSettings

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
EXTRAS = PYPROJECT["project"]["optional-dependencies"]


def test_service_extras_carry_no_tensorflow():
    for extra in ("service", "cpu", "gpu", "client"):
        assert not [r for r in EXTRAS[extra] if re.match(r"(tensorflow|keras|tf2onnx)\b", r)], extra
    assert not [r for r in PYPROJECT["project"]["dependencies"] if r.startswith(("tensorflow", "keras"))]


def test_dockerfiles_install_existing_extras_and_ship_the_model():
    for name, extras in (("Dockerfile", "service,cpu"), ("Dockerfile.gpu", "service,gpu")):
        text = (ROOT / "docker" / name).read_text()
        assert f'"carmask[{extras}]"' in text
        assert all(e in EXTRAS for e in extras.split(","))
        assert "COPY models/ /app/models/" in text and "HEALTHCHECK" in text and "USER 10001" in text
        assert "CARMASK_MODEL=/app/models/carmask-v2.json" in text and "CARMASK_MODELS=/app/models" in text
    assert (ROOT / "models" / "carmask-unet.json").is_file() and (ROOT / "models" / "carmask-v2.json").is_file()


def test_compose_settings_are_real_service_settings():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    fields = {f"CARMASK_{name.upper()}" for name in ServiceSettings.model_fields}
    for name in ("carmask", "carmask-gpu"):
        service = compose["services"][name]
        unknown = set(service["environment"]) - fields
        assert not unknown, f"{name}: {unknown} are not settings of service/settings.py"
        assert (ROOT / service["build"]["dockerfile"]).is_file()
        assert "/ready" in " ".join(service["healthcheck"]["test"])
    gpu = compose["services"]["carmask-gpu"]["deploy"]["resources"]["reservations"]["devices"][0]
    assert gpu["driver"] == "nvidia" and "gpu" in gpu["capabilities"]
    for lb in ("lb", "lb-gpu"):
        conf = compose["services"][lb]["volumes"][0].split(":")[0]
        assert (ROOT / conf).is_file()


def test_container_test_names_its_missing_prerequisites(tmp_path):
    import shutil
    import subprocess

    bin_dir = tmp_path / "bin"  # a PATH with a shell and nothing of podman's world
    bin_dir.mkdir()
    for tool in ("bash", "dirname"):
        (bin_dir / tool).symlink_to(shutil.which(tool))
    result = subprocess.run(
        ["bash", str(ROOT / "docker" / "container-test.sh")],
        capture_output=True,
        text=True,
        env={"PATH": str(bin_dir)},
        timeout=30,
    )
    assert result.returncode == 2
    assert "container-test needs: podman buildah runc debootstrap curl" in result.stderr
    assert "apt-get install -y podman buildah runc debootstrap" in result.stderr
