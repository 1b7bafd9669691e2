"""GATEWAY_KAFKA_SECURITY_PROTOCOL and its companions: what start-up refuses, and the options
every aiokafka client is built with."""

from __future__ import annotations

import os
import ssl
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.errors import ConfigurationError
from gateway.kafka_security import client_security
from gateway.settings import load_settings
from tests.support.tls import make_tls_files

SCRAM_512 = {
    "GATEWAY_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
    "GATEWAY_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
    "GATEWAY_KAFKA_SASL_USERNAME": "gateway",
    "GATEWAY_KAFKA_SASL_PASSWORD": "s3cret-of-the-gateway",
}


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith("GATEWAY_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)  # no stray .env


@pytest.fixture
def ca_file(tmp_path: Path) -> Path:
    return make_tls_files(tmp_path / "tls", ca_name="Office Kafka CA").ca


def given(monkeypatch: pytest.MonkeyPatch, variables: dict[str, str]) -> None:
    for name, value in variables.items():
        monkeypatch.setenv(name, value)


def refusal(monkeypatch: pytest.MonkeyPatch, variables: dict[str, str]) -> str:
    given(monkeypatch, variables)
    with pytest.raises(ConfigurationError) as refused:
        load_settings()
    return str(refused.value)


@pytest.mark.parametrize(
    "missing",
    ["GATEWAY_KAFKA_SASL_MECHANISM", "GATEWAY_KAFKA_SASL_USERNAME", "GATEWAY_KAFKA_SASL_PASSWORD"],
)
@pytest.mark.parametrize("protocol", ["SASL_SSL", "SASL_PLAINTEXT"])
def test_given_a_sasl_protocol_without_one_credential_then_start_up_names_it(
    monkeypatch: pytest.MonkeyPatch, missing: str, protocol: str
) -> None:
    variables = {**SCRAM_512, "GATEWAY_KAFKA_SECURITY_PROTOCOL": protocol}
    del variables[missing]
    message = refusal(monkeypatch, variables)
    assert message == f"{missing}: needed with GATEWAY_KAFKA_SECURITY_PROTOCOL={protocol}"


def test_given_an_empty_password_then_it_counts_as_missing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    message = refusal(monkeypatch, {**SCRAM_512, "GATEWAY_KAFKA_SASL_PASSWORD": ""})
    assert message.startswith("GATEWAY_KAFKA_SASL_PASSWORD: needed")


@pytest.mark.parametrize("protocol", ["PLAINTEXT", "SSL"])
def test_given_credentials_without_a_sasl_protocol_then_start_up_refuses_to_ignore_them(
    monkeypatch: pytest.MonkeyPatch, protocol: str
) -> None:
    """A forgotten GATEWAY_KAFKA_SECURITY_PROTOCOL would connect without the credentials."""
    variables = {**SCRAM_512, "GATEWAY_KAFKA_SECURITY_PROTOCOL": protocol}
    message = refusal(monkeypatch, variables)
    assert message == (
        f"GATEWAY_KAFKA_SASL_MECHANISM: set, but GATEWAY_KAFKA_SECURITY_PROTOCOL={protocol} "
        "sends no SASL credentials (SASL_SSL or SASL_PLAINTEXT do)"
    )


def test_given_an_unknown_mechanism_then_the_error_names_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    message = refusal(monkeypatch, {**SCRAM_512, "GATEWAY_KAFKA_SASL_MECHANISM": "SCRAM-SHA-1"})
    assert message.startswith("GATEWAY_KAFKA_SASL_MECHANISM: ")
    assert "SCRAM-SHA-512" in message  # the accepted values are listed


def test_given_a_ca_file_that_does_not_exist_then_start_up_names_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    absent = tmp_path / "nowhere" / "ca.pem"
    message = refusal(monkeypatch, {**SCRAM_512, "GATEWAY_KAFKA_CA_FILE": str(absent)})
    assert message.startswith(f"GATEWAY_KAFKA_CA_FILE: {absent}: not a readable PEM file")
    assert "No such file" in message


def test_given_a_ca_file_without_certificates_then_start_up_names_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    not_pem = tmp_path / "ca.pem"
    not_pem.write_text("not a certificate\n", encoding="utf-8")
    message = refusal(monkeypatch, {**SCRAM_512, "GATEWAY_KAFKA_CA_FILE": str(not_pem)})
    assert message.startswith(f"GATEWAY_KAFKA_CA_FILE: {not_pem}: not a readable PEM file")


@pytest.mark.parametrize("protocol", ["PLAINTEXT", "SASL_PLAINTEXT"])
def test_given_a_ca_file_without_tls_then_start_up_says_tls_is_off(
    monkeypatch: pytest.MonkeyPatch, ca_file: Path, protocol: str
) -> None:
    """SASL_PLAINTEXT with a CA file: the password would travel in clear, unlike what was meant."""
    variables = {**SCRAM_512, "GATEWAY_KAFKA_CA_FILE": str(ca_file)}
    variables["GATEWAY_KAFKA_SECURITY_PROTOCOL"] = protocol
    if protocol == "PLAINTEXT":
        for name in ("MECHANISM", "USERNAME", "PASSWORD"):
            del variables[f"GATEWAY_KAFKA_SASL_{name}"]
    message = refusal(monkeypatch, variables)
    assert message == (
        f"GATEWAY_KAFKA_CA_FILE: set, but GATEWAY_KAFKA_SECURITY_PROTOCOL={protocol} "
        "uses no TLS (SSL, SASL_SSL)"
    )


def test_given_sasl_ssl_with_scram_then_every_client_gets_credentials_and_a_checking_context(
    monkeypatch: pytest.MonkeyPatch, ca_file: Path
) -> None:
    given(monkeypatch, {**SCRAM_512, "GATEWAY_KAFKA_CA_FILE": str(ca_file)})
    security = client_security(load_settings().kafka)
    context = security.pop("ssl_context")
    assert security == {
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "gateway",
        "sasl_plain_password": "s3cret-of-the-gateway",
    }
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname is True
    trusted = [dict(entry[0] for entry in ca["subject"]) for ca in context.get_ca_certs()]
    assert trusted == [{"commonName": "Office Kafka CA"}]


def test_given_ssl_without_a_ca_file_then_the_systems_cas_are_trusted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    given(monkeypatch, {"GATEWAY_KAFKA_SECURITY_PROTOCOL": "SSL"})
    security = client_security(load_settings().kafka)
    assert set(security) == {"security_protocol", "ssl_context"}
    assert security["ssl_context"].verify_mode == ssl.CERT_REQUIRED


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256"])
def test_given_sasl_plaintext_then_credentials_and_no_tls(
    monkeypatch: pytest.MonkeyPatch, mechanism: str
) -> None:
    variables = {**SCRAM_512, "GATEWAY_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT"}
    given(monkeypatch, {**variables, "GATEWAY_KAFKA_SASL_MECHANISM": mechanism})
    security = client_security(load_settings().kafka)
    assert "ssl_context" not in security
    assert (security["security_protocol"], security["sasl_mechanism"]) == (
        "SASL_PLAINTEXT",
        mechanism,
    )


def test_given_no_security_variables_then_clients_speak_plaintext() -> None:
    assert client_security(load_settings().kafka) == {"security_protocol": "PLAINTEXT"}


def test_given_an_incomplete_sasl_setting_then_the_command_stops_with_one_line(
    tmp_path: Path,
) -> None:
    variables = {**SCRAM_512}
    del variables["GATEWAY_KAFKA_SASL_USERNAME"]
    environment = {
        name: value for name, value in os.environ.items() if not name.startswith("GATEWAY_")
    }
    result = subprocess.run(
        [sys.executable, "-m", "gateway", "tail", "--idle-timeout", "1"],
        env={**environment, **variables},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "GATEWAY_KAFKA_SASL_USERNAME: needed with GATEWAY_KAFKA_SECURITY_PROTOCOL=SASL_SSL" in (
        result.stderr
    )
