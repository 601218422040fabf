"""deploy/netbed.py as a module (deploy/ is not a package)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def load():
    if "netbed" in sys.modules:
        return sys.modules["netbed"]
    spec = importlib.util.spec_from_file_location("netbed", ROOT / "deploy" / "netbed.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["netbed"] = mod
    spec.loader.exec_module(mod)
    return mod
