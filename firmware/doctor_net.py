"""``vanbox doctor``'s network checks: the CA file and the broker's certificate
(:func:`check_tls`) and the broker login (:func:`check_broker`)."""

from __future__ import annotations

import os
import socket
import ssl
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from telemetry.config import Config

from .doctor_checks import CERT_WARN_DAYS, FAIL, OK, SKIP, WARN, Finding, Probes


def _days_left(not_after: str, now: datetime) -> float:
    return (ssl.cert_time_to_seconds(not_after) - now.timestamp()) / 86400


def _cert_finding(what: str, not_after: str, now: datetime, fix: str) -> Finding | None:
    days = _days_left(not_after, now)
    if days < 0:
        return Finding("tls", FAIL, f"{what} expired on {not_after}", fix)
    if days < CERT_WARN_DAYS:
        return Finding("tls", WARN, f"{what} expires in {days:.0f} days ({not_after})", fix)
    return None


def check_tls(cfg: Config, probes: Probes) -> list[Finding]:
    mq = cfg.mqtt
    if not mq["enabled"] or (not mq["tls"] and not mq["ca_file"]):
        return [Finding("tls", SKIP, "mqtt.tls is false")]
    now = probes.now()
    out: list[Finding] = []
    ca = mq["ca_file"]
    try:
        ctx = ssl.create_default_context(cafile=ca or None)
    except FileNotFoundError:
        return [
            Finding(
                "tls",
                FAIL,
                f"mqtt.ca_file = {ca!r}: no such file",
                "copy the broker's CA certificate (PEM) there",
            )
        ]
    except (ssl.SSLError, OSError) as e:
        return [
            Finding(
                "tls",
                FAIL,
                f"mqtt.ca_file = {ca!r}: not a PEM certificate ({e})",
                "use the CA certificate in PEM format (-----BEGIN CERTIFICATE-----)",
            )
        ]
    if ca:
        certs = ctx.get_ca_certs()
        if not certs:
            out.append(
                Finding(
                    "tls",
                    FAIL,
                    f"mqtt.ca_file = {ca!r}: holds no CA certificate",
                    "use the certificate of the CA that signed the broker's",
                )
            )
        for c in certs:
            subj = dict(x[0] for x in c.get("subject", ()))
            f = _cert_finding(
                f"CA certificate {subj.get('commonName', '?')!r} in {ca}",
                c["notAfter"],
                now,
                "get the renewed CA certificate from the broker's admin",
            )
            if f:
                out.append(f)
    if not mq["tls"]:
        return out or [Finding("tls", OK, f"{ca} loads; mqtt.tls is false")]
    host, port = mq["host"], mq["port"]
    try:
        raw = socket.create_connection((host, port), timeout=probes.timeout)
    except OSError as e:
        return out + [Finding("tls", SKIP, f"{host}:{port} unreachable ({e}); see broker")]
    try:
        with ctx.wrap_socket(raw, server_hostname=host) as s:
            peer = s.getpeercert()
    except ssl.SSLCertVerificationError as e:
        why = e.verify_message or str(e)
        if "ostname" in why or "IP address mismatch" in why:
            fix = f"mqtt.host must be the name in the broker's certificate (not {host!r})"
        elif "expired" in why:
            fix = "the broker's certificate expired: its admin must renew it"
        else:
            fix = "set mqtt.ca_file to the CA that signed the broker's certificate"
        return out + [Finding("tls", FAIL, f"TLS failure at {host}:{port}: {why}", fix)]
    except OSError as e:  # SSLError, or the peer hung up on the handshake
        why = getattr(e, "reason", None) or e.strerror or str(e)
        return out + [
            Finding(
                "tls",
                FAIL,
                f"TLS failure at {host}:{port}: handshake failed ({why})",
                f"port {port} may not speak TLS: MQTT over TLS is usually 8883 "
                "(or set mqtt.tls = false)",
            )
        ]
    finally:
        raw.close()
    f = _cert_finding(
        f"the broker's certificate ({host})",
        peer["notAfter"],
        now,
        "ask the broker's admin to renew the certificate",
    )
    if f:
        out.append(f)
    if not any(x.status in (FAIL, WARN) for x in out):
        days = _days_left(peer["notAfter"], now)
        out.append(
            Finding("tls", OK, f"{host}:{port} certificate verifies, valid {days:.0f} more days")
        )
    return out


def running_box_mqtt(cfg: Config, timeout: float) -> dict[str, Any] | None:
    """The broker state a running box reports on its own status page, or None when no box
    answers on ``kiosk.port``."""
    import json
    import urllib.request

    host = cfg.kiosk["bind"]
    host = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    url = f"http://{host}:{cfg.kiosk['port']}/status.json"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            body = json.loads(r.read(65536))
    except (OSError, ValueError):
        return None
    mq = body.get("mqtt") if isinstance(body, dict) else None
    return mq if isinstance(mq, dict) else None


def check_broker(cfg: Config, probes: Probes) -> Finding:
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    mq = cfg.mqtt
    if not mq["enabled"]:
        return Finding("broker", SKIP, "mqtt.enabled is false: the box records locally only")
    host, port = mq["host"], mq["port"]
    where = f"{host}:{port}"
    password = None
    if mq["password_file"]:
        try:
            password = Path(mq["password_file"]).read_text(encoding="utf-8").splitlines()[0].strip()
        except (OSError, IndexError) as e:
            return Finding(
                "broker",
                FAIL,
                f"mqtt.password_file = {mq['password_file']!r}: cannot read ({e})",
                "write the password into that file: chmod 600, owner vanbox",
            )
    # The central broker ties the client id to the login (use_username_as_clientid): a
    # login of ours with the van's name would take over the running box's session and
    # fire its last will. So ask the running box first; log in only when none is
    # connected.
    running = running_box_mqtt(cfg, probes.timeout)
    if running is not None and running.get("connected"):
        return Finding(
            "broker",
            OK,
            f"{where}: the running box is connected with login {mq['username'] or '(none)'}"
            " (checked through its status page, without a second login)",
        )
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"vanbox-doctor-{os.getpid()}")
    if mq["username"]:
        c.username_pw_set(mq["username"], password)
    if mq["tls"]:
        try:
            c.tls_set(ca_certs=mq["ca_file"] or None)
        except (OSError, ssl.SSLError) as e:
            return Finding("broker", FAIL, f"TLS failure: cannot use mqtt.ca_file ({e})", "see tls")
    c.connect_timeout = probes.timeout
    result: dict[str, Any] = {}
    c.on_connect = lambda client, userdata, flags, rc, props: result.setdefault("rc", rc)
    # Plain TCP first, so "unreachable" is never mistaken for a TLS or login problem.
    try:
        socket.create_connection((host, port), timeout=probes.timeout).close()
    except socket.gaierror:
        return Finding(
            "broker",
            FAIL,
            f"{where} unreachable: unknown host {host!r}",
            "check mqtt.host and that the Pi is online (ping the host)",
        )
    except ConnectionRefusedError:
        return Finding(
            "broker",
            FAIL,
            f"{where} unreachable: connection refused (nothing listens)",
            "check mqtt.port; is the broker running?",
        )
    except OSError as e:
        return Finding(
            "broker",
            FAIL,
            f"{where} unreachable: {e.strerror or e}",
            "check the mobile link and any firewall; the box buffers meanwhile",
        )
    try:
        c.connect(host, port, keepalive=10)
    except OSError as e:  # SSLError included; the port answered TCP a moment ago
        why = getattr(e, "verify_message", None) or getattr(e, "reason", None) or e
        if mq["tls"]:
            return Finding(
                "broker",
                FAIL,
                f"TLS failure at {where}: {why}",
                "see the tls finding; check mqtt.ca_file, mqtt.host and mqtt.port",
            )
        return Finding("broker", FAIL, f"{where}: connection failed ({why})", "check mqtt.port")
    deadline = time.monotonic() + probes.timeout
    try:
        while "rc" not in result and time.monotonic() < deadline:
            if c.loop(timeout=0.1) != mqtt.MQTT_ERR_SUCCESS:
                break
    finally:
        c.disconnect()
    if "rc" not in result:
        hint = "" if mq["tls"] else " (does the port expect TLS? then set mqtt.tls = true)"
        return Finding(
            "broker",
            FAIL,
            f"{where} accepted the connection but sent no MQTT answer{hint}",
            "check mqtt.port and mqtt.tls",
        )
    rc = result["rc"]
    if rc.is_failure:
        if rc.value in (134, 135, 4, 5):
            who = f"user {mq['username']!r}" if mq["username"] else "anonymous login"
            return Finding(
                "broker",
                FAIL,
                f"{where} refused the login ({who}: {rc})",
                "check mqtt.username and the password in mqtt.password_file",
            )
        return Finding(
            "broker", FAIL, f"{where} refused the connection: {rc}", "ask the broker's admin"
        )
    who = f"as {mq['username']!r}" if mq["username"] else "anonymously"
    return Finding(
        "broker", OK, f"{where} accepts the login {who}{' over TLS' if mq['tls'] else ''}"
    )
