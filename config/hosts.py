"""Broker settings that name several hosts of one cluster under one account:
`mqtt://user:pass@h1:1883,h2:1883,h3:1883` (MQIM_BROKER_URL), `amqp://user:pass@h1:5672,h2:5672/`
(MQIM_RABBITMQ_AMQP_URL), `http://user:pass@h1:15672,h2:15672` (MQIM_RABBITMQ_MANAGEMENT_URL).

Clients try the hosts in turn, so no single node is needed to connect. A URL with one host is
the same list of one. Parsed by hand, not with urlsplit: its `.port` fails on a comma list, and
its errors would quote the URL with the password in it (ours never do).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import quote, unquote

from config.urls import ConfigError

MAX_HOSTS = 16
_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?\Z")
_IPV6 = re.compile(r"[0-9A-Fa-f:.]+\Z")


@dataclass(frozen=True)
class Endpoint:
    host: str  # an IPv6 address without its brackets
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


@dataclass(frozen=True)
class ServerList:
    """The hosts of one service, in the order given, and the one account on all of them."""

    scheme: str
    username: str
    password: str
    endpoints: tuple[Endpoint, ...]
    path: str = ""  # the AMQP vhost path or the management API's base path, with its `/`
    query: str = ""

    def url(self, index: int) -> str:
        """The single-host URL of endpoint `index` (for clients that take one URL)."""
        user = quote(self.username, safe="")
        auth = f"{user}:{quote(self.password, safe='')}@" if user or self.password else ""
        query = f"?{self.query}" if self.query else ""
        return f"{self.scheme}://{auth}{self.endpoints[index]}{self.path}{query}"

    def __str__(self) -> str:  # never shows the password
        user = f"{self.username}@" if self.username else ""
        return f"{self.scheme}://{user}{','.join(map(str, self.endpoints))}{self.path}"


def parse_server_list(url: str, *, name: str, schemes: Mapping[str, int],
                      example: str) -> ServerList:
    """Parse `scheme://[user[:pass]@]host[:port][,host[:port]…][/path][?query]`.

    `schemes` maps each accepted scheme to its default port. Errors name the setting and the
    example, and never include the URL (it holds a password).
    """
    def fail(why: str) -> ConfigError:
        return ConfigError(f"{name} {why}; it must look like {example}")

    scheme, sep, rest = url.strip().partition("://")
    if not sep or scheme.lower() not in schemes:
        raise fail(f"must start with {' or '.join(s + '://' for s in schemes)}")
    scheme = scheme.lower()
    if any(c == "#" or c.isspace() or not c.isprintable() for c in rest):
        raise fail("contains a space, a control character or a '#'")
    end = min((i for i in (rest.find("/"), rest.find("?")) if i >= 0), default=len(rest))
    netloc, tail = rest[:end], rest[end:]
    path, _, query = tail.partition("?")
    userinfo, at, hosts = netloc.rpartition("@")
    username, _, password = userinfo.partition(":")
    if at and not username:
        raise fail("has an '@' but no user name before it")
    items = hosts.split(",")
    if len(items) > MAX_HOSTS:
        raise fail(f"names more than {MAX_HOSTS} hosts")
    endpoints = tuple(_endpoint(item, n, schemes[scheme], fail)
                      for n, item in enumerate(items, 1))
    if len(set(endpoints)) != len(endpoints):
        raise fail("names the same host:port twice")
    return ServerList(scheme, unquote(username), unquote(password), endpoints, path, query)


def _endpoint(item: str, n: int, default_port: int,
              fail: Callable[[str], ConfigError]) -> Endpoint:
    # The host is named by its position only: a password with an unquoted '/' or '@' would
    # otherwise leak into the message.
    if not item:
        raise fail(f"has an empty host #{n} (a stray comma, or no host at all)")
    if item.startswith("["):
        host, bracket, port = item[1:].partition("]")
        if not bracket or not _IPV6.match(host) or (port and not port.startswith(":")):
            raise fail(f"has a malformed IPv6 host #{n}")
        port = port[1:]
    else:
        host, _, port = item.partition(":")
        if not _NAME.match(host):
            raise fail(f"has a malformed host #{n} (or a password with an unquoted / ? @ #)")
    if not port:
        return Endpoint(host, default_port)
    if not port.isascii() or not port.isdigit() or not 0 < int(port) < 65536:
        raise fail(f"has a bad port on host #{n}")
    return Endpoint(host, int(port))


def parse_mqtt_hosts(url: str) -> ServerList:
    return parse_server_list(url, name="MQIM_BROKER_URL", schemes={"mqtt": 1883, "tcp": 1883},
                             example="mqtt://user:pass@h1:1883,h2:1883")


def parse_amqp_hosts(url: str) -> ServerList:
    return parse_server_list(url, name="MQIM_RABBITMQ_AMQP_URL",
                             schemes={"amqp": 5672, "amqps": 5671},
                             example="amqp://user:pass@h1:5672,h2:5672/")


def parse_management_hosts(url: str) -> ServerList:
    return parse_server_list(url, name="MQIM_RABBITMQ_MANAGEMENT_URL",
                             schemes={"http": 15672, "https": 15671},
                             example="http://user:pass@h1:15672,h2:15672")
