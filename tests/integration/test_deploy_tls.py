"""TLS at the deploy proxy, and routes that survive the proxy, on the test bed's deploy host: real nginx and
Docker, a CA and server certificates made at test time, the official OpenAI client verifying them.

One module state, built up in order: a second app, then the app behind TLS (first certificate), then the
rotated certificate, then a port change and a removed proxy (both recreate it).
"""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from dataclasses import replace
from pathlib import Path

import httpx
import openai
import pytest

from services.artifacts.workspace import Artifacts
from services.deploy import proxy, releases, volumes
from services.deploy.engine import connect
from services.deploy.pipeline import DeployRequest, deploy
from services.deploy.target import AppSpec, Target, Tls
from tests.fakearm.tls import TestCertificates as Certs
from tests.fakearm.tls import make_certificates
from tests.integration.deploy_support import NS_IP, Images, registry_auth, target

APP, OTHER = "fx-tls", "fx-other"
PORTS = {APP: 18131, OTHER: 18132}
MOVED = 18133
"""APP's port after the change (a proxy with other ports is a new proxy)."""


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Certs, Certs]:
    """Two CAs, each with a server certificate for the deploy host: the first one and its rotation."""
    folder = tmp_path_factory.mktemp("tls")
    return make_certificates(folder / "first", NS_IP), make_certificates(folder / "second", NS_IP)


@pytest.fixture(scope="module")
def arts_m(tmp_path_factory: pytest.TempPathFactory) -> Artifacts:
    return Artifacts(tmp_path_factory.mktemp("workspace"))


def tls_target(tb: dict[str, str], cert: Certs, **ports: int) -> Target:
    """The test bed's staging target with both apps (ports overridden by `ports`) behind TLS with `cert`."""
    specs = {app: AppSpec(app, ports.get(app, port), ready_timeout_s=30) for app, port in PORTS.items()}
    return replace(target(tb, **specs), tls=Tls(cert.cert_file, cert.key_file))


def ship(tb: dict[str, str], arts: Artifacts, where: Target, app: str, image: str, version: str) -> None:
    request = DeployRequest(where, app, image, version, registry_auth=registry_auth(tb))
    assert deploy(request, artifacts=arts, actor="tls@test").status == "live"


def chat(port: int, ca: Path) -> str:
    """The app's answer through the official OpenAI client, over HTTPS, the certificate verified against `ca`."""
    http = httpx.Client(verify=ssl.create_default_context(cafile=str(ca)), trust_env=False)
    with openai.OpenAI(base_url=f"https://{NS_IP}:{port}/v1", api_key="any", http_client=http, max_retries=0) as client:
        answer = client.chat.completions.create(model="fixture", messages=[{"role": "user", "content": "hi"}])
    return str(answer.choices[0].message.content)


def served_certificate(port: int) -> bytes:
    """DER of the certificate the proxy serves on `port` (not verified: which one is the question)."""
    return ssl.PEM_cert_to_DER_cert(ssl.get_server_certificate((NS_IP, port), timeout=5))


def der(cert: Certs) -> bytes:
    return ssl.PEM_cert_to_DER_cert(cert.cert_file.read_text())


def test_app_answers_over_verified_https_with_hsts_and_plain_http_redirects(
    tb: dict[str, str], images: Images, arts_m: Artifacts, certs: tuple[Certs, Certs]
) -> None:
    first = certs[0]
    ship(tb, arts_m, tls_target(tb, first), OTHER, images.v1, "1.0.0")
    ship(tb, arts_m, tls_target(tb, first), APP, images.v1, "1.0.0")
    assert chat(PORTS[APP], first.ca_file) == "fixture 1.0.0"
    assert chat(PORTS[OTHER], first.ca_file) == "fixture 1.0.0"
    with httpx.Client(verify=ssl.create_default_context(cafile=str(first.ca_file)), trust_env=False) as http:
        answer = http.get(f"https://{NS_IP}:{PORTS[APP]}/")
        assert answer.status_code == 200 and answer.json()["version"] == "1.0.0"
        assert answer.headers["Strict-Transport-Security"] == proxy.HSTS
        assert answer.extensions["network_stream"].get_extra_info("ssl_object").version() in ("TLSv1.2", "TLSv1.3")
    plain = urllib.request.build_opener(urllib.request.ProxyHandler({}), NoRedirect())
    with pytest.raises(urllib.error.HTTPError) as moved:
        plain.open(f"http://{NS_IP}:{PORTS[APP]}/v1/models?x=1", timeout=5)
    assert moved.value.code == 301
    assert moved.value.headers["Location"] == f"https://{NS_IP}:{PORTS[APP]}/v1/models?x=1"
    with pytest.raises(openai.APIConnectionError):  # a CA that did not sign it: refused
        chat(PORTS[APP], certs[1].ca_file)


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


def test_key_is_a_0400_secret_of_the_proxy_only(tb: dict[str, str], images: Images, certs: tuple[Certs, Certs]) -> None:
    key_line = certs[0].key_file.read_text().splitlines()[1]  # a line of the key's base64 body
    with connect(target(tb)) as client:
        gateway = client.containers.get(proxy.PROXY)
        path = f"{volumes.TLS_DEST}/{volumes.TLS_KEY}"
        done = gateway.exec_run(["stat", "-c", "%a %u %g", path])
        assert (done.exit_code, done.output.decode().strip()) == (0, "400 0 0")
        assert gateway.exec_run(["cat", path], user="65534").exit_code != 0  # nginx's workers cannot read it
        containers = client.containers.list(all=True, filters={"label": "workbench.role"})
        assert {proxy.PROXY, *(c.name for c in releases.app_containers(client, APP))} <= {c.name for c in containers}
        for container in containers:
            assert key_line not in json.dumps(container.attrs), container.name
            assert "PRIVATE KEY" not in json.dumps(container.attrs), container.name
            assert key_line.encode() not in container.logs(), container.name
            if container.labels.get("workbench.role") == "app":
                assert volumes.TLS_VOLUME not in {m.get("Name") for m in container.attrs["Mounts"]}
        for image in client.images.list():
            assert key_line not in json.dumps(image.attrs) + json.dumps(image.history()), image.tags


def test_rotated_certificate_is_served_after_the_next_deploy(
    tb: dict[str, str], images: Images, arts_m: Artifacts, certs: tuple[Certs, Certs]
) -> None:
    first, second = certs
    assert served_certificate(PORTS[APP]) == der(first)
    ship(tb, arts_m, tls_target(tb, second), APP, images.v2, "2.0.0")
    assert served_certificate(PORTS[APP]) == served_certificate(PORTS[OTHER]) == der(second)
    assert chat(PORTS[APP], second.ca_file) == "fixture 2.0.0"
    assert chat(PORTS[OTHER], second.ca_file) == "fixture 1.0.0"


def test_other_route_survives_a_port_change_and_a_removed_proxy(
    tb: dict[str, str], images: Images, arts_m: Artifacts, certs: tuple[Certs, Certs]
) -> None:
    second = certs[1]
    with connect(target(tb)) as client:
        before = client.containers.get(proxy.PROXY).id
    ship(tb, arts_m, tls_target(tb, second, **{APP: MOVED}), APP, images.v1, "1.0.0")
    with connect(target(tb)) as client:
        assert client.containers.get(proxy.PROXY).id != before  # recreated: its ports changed
    assert chat(MOVED, second.ca_file) == "fixture 1.0.0"
    assert chat(PORTS[OTHER], second.ca_file) == "fixture 1.0.0"

    with connect(target(tb)) as client:
        client.containers.get(proxy.PROXY).remove(force=True)
    ship(tb, arts_m, tls_target(tb, second, **{APP: MOVED}), APP, images.v2, "2.0.0")
    assert chat(MOVED, second.ca_file) == "fixture 2.0.0"
    assert chat(PORTS[OTHER], second.ca_file) == "fixture 1.0.0"
