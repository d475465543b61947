"""Who may read ``/metrics``: an address in ``WEBHOOK_METRICS_NETWORKS``, or an operator's token.

Operators' tokens are the platform tokens (``flask tokens create --platform``, command line
only), presented as the API's are: ``Authorization: Bearer <token>`` or ``ApiKey <token>``.
The address is ``request.remote_addr``: behind a reverse proxy that is the proxy's, unless it
passes the client's and ``WEBHOOK_PROXY_COUNT`` says how many proxies to believe (werkzeug's
``ProxyFix``, app.register_proxy).
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable

from flask import current_app, request

from webhookapp.models import tenancy

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@functools.cache
def _networks(cidrs: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(cidr, strict=False) for cidr in cidrs)


def in_networks(address: str | None, cidrs: Iterable[str]) -> bool:
    """Whether ``address`` (an IP address as text) lies in one of ``cidrs``."""
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped  # ::ffff:127.0.0.1 is loopback too
    return any(ip in network for network in _networks(tuple(cidrs)))


def may_read_metrics() -> bool:
    """The request comes from a metrics network or carries an active platform token."""
    if in_networks(request.remote_addr, current_app.config["WEBHOOK_METRICS_NETWORKS"]):
        return True
    header = request.headers.get("Authorization")
    if not header:
        return False
    token = tenancy.authenticate_header(header, request.remote_addr)
    return token is not None and token.is_platform
