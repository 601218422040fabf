"""The hub's MQTT login: TLS and credentials from the config's ``mqtt`` section, applied
to a paho client."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt

from telemetry.errors import ConfigError


def client_tls(client: mqtt.Client, mqtt_cfg: dict[str, Any]) -> None:
    """Apply ``mqtt.tls``, ``ca_file``, ``username`` and ``password_file`` to a client."""
    if mqtt_cfg.get("tls"):
        ca = mqtt_cfg.get("ca_file") or None
        client.tls_set(ca_certs=ca, tls_version=ssl.PROTOCOL_TLS_CLIENT)
    user = mqtt_cfg.get("username") or ""
    if user:
        password = None
        pw_file = mqtt_cfg.get("password_file") or ""
        if pw_file:
            try:
                password = Path(pw_file).read_text(encoding="utf-8").strip()
            except OSError as e:
                raise ConfigError(
                    f"mqtt.password_file = {pw_file!r}: cannot read ({e.strerror})"
                ) from None
        client.username_pw_set(user, password)
