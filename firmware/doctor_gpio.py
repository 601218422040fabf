"""The GPIO check of ``vanbox doctor`` (:mod:`firmware.doctor_checks`):
:func:`check_gpio` claims the door sensor's pins and reads them, and warns of pins the
Pi's interfaces (UART, I2C, SPI, 1-Wire) use."""

from __future__ import annotations

from telemetry.config import Config

from .doctor_probes import FAIL, OK, SKIP, WARN, Finding, Probes

# Pins the Pi's interfaces use; a sensor there conflicts with them when they are on.
UART_PINS = {14: "UART TXD (the GPS HAT)", 15: "UART RXD (the GPS HAT)"}
OTHER_PINS = {
    2: "I2C SDA",
    3: "I2C SCL",
    4: "1-Wire",
    7: "SPI CE1",
    8: "SPI CE0",
    9: "SPI MISO",
    10: "SPI MOSI",
    11: "SPI SCLK",
}


# --- GPIO ----------------------------------------------------------------------------


def check_gpio(cfg: Config, probes: Probes) -> list[Finding]:
    sen = cfg.sensor
    if sen["kind"] == "none":
        return [Finding("gpio", SKIP, 'sensor.kind = "none": no door sensor')]
    pins = [("sensor.pin", sen["pin"])]
    if sen["kind"] == "beam-pair":
        pins.append(("sensor.pin_b", sen["pin_b"]))
    if probes.box_running():
        return [
            Finding(
                "gpio",
                SKIP,
                "the box is running and holds the sensor pins",
                "for this check stop it first: sudo systemctl stop vanbox",
            )
        ]
    try:
        from gpiozero import DigitalInputDevice
        from gpiozero.exc import GPIOPinInUse
    except ImportError as e:  # pragma: no cover - gpiozero is a dependency
        return [Finding("gpio", FAIL, f"gpiozero missing: {e}", "reinstall vanbox")]
    out = []
    uart_in_use = "serial0" in cfg.gps["port"] or "ttyAMA" in cfg.gps["port"]
    for key, pin in pins:
        if pin in UART_PINS and uart_in_use:
            out.append(
                Finding(
                    "gpio",
                    FAIL,
                    f"{key} = {pin} is {UART_PINS[pin]}, used by gps.port",
                    "move the sensor wire to GPIO 17 or 27 and set the pin in the config",
                )
            )
            continue
        try:
            dev = DigitalInputDevice(pin, pull_up=sen["pull_up"], pin_factory=probes.pin_factory)
        except GPIOPinInUse:
            out.append(
                Finding(
                    "gpio",
                    FAIL,
                    f"{key} = {pin}: GPIO{pin} is in use by another program",
                    "stop the other program (is the box running? `sudo systemctl stop vanbox`), "
                    "or move the sensor to a free pin",
                )
            )
            continue
        except Exception as e:  # noqa: BLE001 - BadPinFactory, PermissionError, ...
            name = type(e).__name__
            fix = (
                "the vanbox user must be in the gpio group: sudo usermod -aG gpio vanbox"
                if "ermission" in f"{name} {e}"
                else "no GPIO here: is this a Raspberry Pi? Off the Pi, set "
                "GPIOZERO_PIN_FACTORY=mock"
            )
            out.append(
                Finding("gpio", FAIL, f"{key} = {pin}: cannot claim GPIO{pin} ({name}: {e})", fix)
            )
            continue
        try:
            level = "high" if dev.value else "low"
        finally:
            dev.close()
        note = f"{key} = {pin}: GPIO{pin} is free, reads {level}"
        if pin in OTHER_PINS:
            out.append(
                Finding(
                    "gpio",
                    WARN,
                    f"{note}, but it is also {OTHER_PINS[pin]}",
                    "if that interface is on (raspi-config), move the sensor to GPIO 17 or 27",
                )
            )
        else:
            out.append(Finding("gpio", OK, note))
    return out
