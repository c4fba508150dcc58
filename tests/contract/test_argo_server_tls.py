"""The Argo Server over TLS with a self-signed certificate (its default: ``argo server``
serves HTTPS with a generated self-signed certificate unless ``--secure=false``; the Argo CLI
then needs ``--insecure-skip-verify`` or ``ARGO_INSECURE_SKIP_VERIFY=true``, see
https://argo-workflows.readthedocs.io/en/latest/tls/).

The swagger-checked stand-in serves HTTPS with a certificate made here; the resumer built from
settings refuses it by default, trusts it through ``METAFLOW_HITL_ARGO_CA_BUNDLE``, and skips
verification only with ``METAFLOW_HITL_ARGO_INSECURE_SKIP_VERIFY=true``, saying so on stderr.
"""

from __future__ import annotations

import ssl
import subprocess
from pathlib import Path
from typing import Any

import pytest

from metaflow_hitl.argo.settings import argo_resumer_from_env
from metaflow_hitl.errors import ConfigError, StoreError
from tests.contract.test_argo_resumers import make_decision, make_request
from tests.fakes.argo_server import (
    NS,
    TOKEN,
    WF,
    FakeArgoServer,
    load_swagger,
    make_workflow,
    serve,
    suspend_node,
)


@pytest.fixture
def https(tmp_path: Path) -> Any:
    cert, key = tmp_path / "argo.crt", tmp_path / "argo.key"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-subj", "/CN=argo-server", "-addext", "subjectAltName=IP:127.0.0.1",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    fake = FakeArgoServer(load_swagger())
    fake.workflows[(NS, WF)] = make_workflow(suspend_node("n1", "deploy"))
    with serve(fake, tls=context) as url:
        yield fake, url, cert
    assert fake.problems == []


def _env(url: str, **more: str) -> dict[str, str]:
    return {"METAFLOW_HITL_ARGO_SERVER": url, "METAFLOW_HITL_ARGO_TOKEN": TOKEN, **more}


def test_a_self_signed_server_is_refused_by_default(https: Any) -> None:
    """Verified against the system's CAs (or ``REQUESTS_CA_BUNDLE``): refused."""
    fake, url, _cert = https
    assert url.startswith("https://")
    with pytest.raises(StoreError, match="could not reach") as info:
        argo_resumer_from_env(_env(url)).resume(make_request(), make_decision())
    assert "SSL" in str(info.value)
    assert fake.writes == []


def test_the_ca_bundle_setting_trusts_it(https: Any) -> None:
    fake, url, cert = https
    resumer = argo_resumer_from_env(_env(url, METAFLOW_HITL_ARGO_CA_BUNDLE=str(cert)))
    assert resumer.resume(make_request(), make_decision()) is True
    assert len(fake.writes) == 1


def test_insecure_skip_verify_works_and_is_loud(
    https: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    fake, url, _cert = https
    assert fake.writes == []
    env = _env(url, METAFLOW_HITL_ARGO_INSECURE_SKIP_VERIFY="true")
    assert argo_resumer_from_env(env).resume(make_request(), make_decision()) is True
    assert "TLS verification of the Argo Server is OFF" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("more", "message"),
    [
        ({"METAFLOW_HITL_ARGO_CA_BUNDLE": "/nonexistent.pem"}, "is not a file"),
        ({"METAFLOW_HITL_ARGO_INSECURE_SKIP_VERIFY": "yes"}, "is not true or false"),
        (
            {
                "METAFLOW_HITL_ARGO_INSECURE_SKIP_VERIFY": "true",
                "METAFLOW_HITL_ARGO_CA_BUNDLE": "/x.pem",
            },
            "choose one",
        ),
    ],
)
def test_bad_tls_settings_are_refused(more: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        argo_resumer_from_env(_env("https://argo.example.com:2746", **more))
