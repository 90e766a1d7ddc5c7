"""Broker settings with several hosts (config/hosts.py): parsing, the single-host form, hostile
input, and that errors never echo the password."""

from __future__ import annotations

import pytest

from broker.link.client import ServiceConnector, service_endpoint
from broker.rabbitmq_admin import RabbitAdmin
from config import ConfigError, Settings
from config.hosts import Endpoint, parse_amqp_hosts, parse_management_hosts, parse_mqtt_hosts

SECRET = "x" * 40


def test_several_hosts_share_one_account() -> None:
    url = parse_mqtt_hosts("mqtt://mqim-bridge:s%40c%2Fret@h1:1883,h2:1884,10.0.0.3")
    assert url.username == "mqim-bridge"
    assert url.password == "s@c/ret"
    assert url.endpoints == (Endpoint("h1", 1883), Endpoint("h2", 1884), Endpoint("10.0.0.3", 1883))
    assert url.url(1) == "mqtt://mqim-bridge:s%40c%2Fret@h2:1884"
    assert "s@c" not in str(url)
    assert "ret" not in str(url)


def test_single_host_form_is_a_list_of_one() -> None:
    url = parse_mqtt_hosts("tcp://u:p@broker.local")
    assert url.endpoints == (Endpoint("broker.local", 1883),)
    settings = Settings(broker_url="mqtt://mqim-bridge:pw@broker.local:1884")
    broker = settings.external_broker()
    assert (broker.host, broker.port, broker.password) == ("broker.local", 1884, "pw")


def test_amqp_keeps_vhost_and_query_and_default_ports() -> None:
    url = parse_amqp_hosts("amqp://u:p@h1,h2:5673/%2F?heartbeat=10")
    assert url.endpoints == (Endpoint("h1", 5672), Endpoint("h2", 5673))
    assert url.url(0) == "amqp://u:p@h1:5672/%2F?heartbeat=10"
    assert parse_amqp_hosts("amqps://u:p@h1/").endpoints == (Endpoint("h1", 5671),)


def test_ipv6_hosts() -> None:
    url = parse_management_hosts("http://admin:pw@[::1]:15672,[fe80::2]")
    assert url.endpoints == (Endpoint("::1", 15672), Endpoint("fe80::2", 15672))
    assert url.url(0) == "http://admin:pw@[::1]:15672"


@pytest.mark.parametrize(("url", "why"), [
    ("", "must start with"),
    ("http://u:p@h1:1883", "must start with"),
    ("mqtt:/u:p@h1", "must start with"),
    ("mqtt://u:p@h1:1883,,h2:1883", "empty host #2"),
    ("mqtt://u:p@h1:1883,", "empty host #2"),
    ("mqtt://u:p@", "empty host #1"),
    ("mqtt://u:p@h1:0", "bad port on host #1"),
    ("mqtt://u:p@h1:65536", "bad port"),
    ("mqtt://u:p@h1:-1", "bad port"),
    ("mqtt://u:p@h1:١٢٣", "bad port"),  # non-ASCII digits
    ("mqtt://u:p@h1:1883:1884", "bad port"),
    ("mqtt://u:p@h1:1883,h1:1883", "same host:port twice"),
    ("mqtt://u:p@h1,h1:1883", "same host:port twice"),
    ("mqtt://u:p@h!1", "malformed host #1"),
    ("mqtt://u:p@h1:1883,h%2:1883", "malformed host #2"),
    ("mqtt://u:p@-h1", "malformed host #1"),
    ("mqtt://u:p@h1 ,h2", "space"),
    ("mqtt://u:p@h1\n,h2", "control character"),
    ("mqtt://u:p@h1\x00", "control character"),
    ("mqtt://u:p@h1#frag", "'#'"),
    ("mqtt://:p@h1", "no user name"),
    ("mqtt://u:p@[::1", "malformed IPv6 host #1"),
    ("mqtt://u:p@[::1]1883", "malformed IPv6"),
    ("mqtt://u:p@[zz::1]:1883", "malformed IPv6"),
    ("mqtt://u:p@" + ",".join(f"h{i}" for i in range(17)), "more than 16 hosts"),
])
def test_malformed_lists_are_refused_with_the_setting_named(url: str, why: str) -> None:
    with pytest.raises(ConfigError, match="MQIM_BROKER_URL") as caught:
        parse_mqtt_hosts(url)
    assert why in str(caught.value)


@pytest.mark.parametrize("url", [
    "mqtt://mqim-bridge:hunter2secret@h1:99999",
    "mqtt://mqim-bridge:hunter2/secret@h1:1883",  # an unquoted '/' cuts the password
    "mqtt://mqim-bridge:hunter2secret@h1,,h2",
])
def test_errors_never_echo_the_password(url: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_mqtt_hosts(url)
    assert "hunter2" not in str(caught.value)
    assert "secret" not in str(caught.value)


def test_settings_check_refuses_malformed_lists() -> None:
    def settings(broker: str = "mqtt://u:p@h1,h2", amqp: str = "amqp://u:p@h1,h2/",
                 management: str = "http://u:p@h1:15672,h2:15672") -> Settings:
        return Settings(jwt_secret=SECRET, broker_kind="hooks", broker_url=broker,
                        rabbitmq_amqp_url=amqp, rabbitmq_management_url=management)

    settings().check()
    with pytest.raises(ConfigError, match="MQIM_BROKER_URL"):
        settings(broker="mqtt://u:p@h1,,h2").check()
    with pytest.raises(ConfigError, match="MQIM_RABBITMQ_AMQP_URL"):
        settings(amqp="amqp://u:p@h1:5672,h1:5672/").check()
    with pytest.raises(ConfigError, match="MQIM_RABBITMQ_MANAGEMENT_URL"):
        settings(management="ftp://u:p@h1").check()


async def test_the_connector_rotates_hosts_with_a_fresh_client_id_after_the_first() -> None:
    settings = Settings(jwt_secret=SECRET, broker_url="mqtt://mqim-bridge:pw@h1:1,h2:2,h3:3")
    endpoint = service_endpoint(settings)
    assert (endpoint.host, endpoint.port, len(endpoint.hosts)) == ("h1", 1, 3)
    connector = ServiceConnector(settings, "mqim-bridge:api-1")
    made = [connector() for _ in range(4)]
    assert [(c._hostname, c._port) for c in made] == [("h1", 1), ("h2", 2), ("h3", 3), ("h1", 1)]
    assert [c.identifier for c in made] == [
        "mqim-bridge:api-1", "mqim-bridge:api-1-r1", "mqim-bridge:api-1-r2", "mqim-bridge:api-1-r3"]
    persistent = ServiceConnector(settings, "mqim-bridge:b", clean_session=False)
    assert {persistent().identifier for _ in range(3)} == {"mqim-bridge:b"}
    assert len(connector) == 3


def test_embedded_mode_derives_a_single_host() -> None:
    endpoint = service_endpoint(Settings(jwt_secret=SECRET))
    assert endpoint.hosts == (Endpoint(endpoint.host, endpoint.port),)


async def test_the_management_client_refuses_a_malformed_list() -> None:
    with pytest.raises(ConfigError, match="MQIM_RABBITMQ_MANAGEMENT_URL"):
        RabbitAdmin("http://admin:pw@h1:15672,,h2")
    async with RabbitAdmin("http://admin:pw@h1:15672,h2:15673/base/") as admin:
        assert admin._bases == ["http://h1:15672/base", "http://h2:15673/base"]
