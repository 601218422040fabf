"""Event kinds: the one place that says, per kind of event, how it is stored and sent.

Every kind of event (a GPS fix, a count at the door, a check-in, a stop visit) is one
:class:`EventKind` in a registry: its event class, the topic its payload goes to, its
outbox kind and priority, its table and columns, how to build a row from the event and
the event back from a row, and how to encode and decode its payload (with the encoders
and bounded decoders of :mod:`telemetry.topics`, which stay the wire format's one home).

The store (recording, the hub's ingest), ``topics.decode`` and the box's resending
(:mod:`telemetry.delivery`) look a kind up here instead of asking an event for its type.
A new kind of event is one :func:`register` call with its ``EventKind`` (plus its
dataclass, its migration and its encoder and decoder, in topics.py or, like the
counselling contacts, in a module of its own: telemetry/contacts.py, imported at the end
of this module). The reconciliation tally (telemetry/tally.py) and the retention
(telemetry/retention.py) read the registry too.

This module is the one to import; it holds no code of its own: the kind itself is
:mod:`telemetry.kinds_model`, the registry :mod:`telemetry.kinds_registry`, and the
built-in kinds (positions, footfall, check-ins, stop visits) :mod:`telemetry.kinds_builtin`.
"""

from __future__ import annotations

from .kinds_builtin import CHECKIN as CHECKIN
from .kinds_builtin import FOOTFALL as FOOTFALL
from .kinds_builtin import POSITION as POSITION
from .kinds_builtin import RESEND_POSITION_PRIORITY as RESEND_POSITION_PRIORITY
from .kinds_builtin import STOP as STOP
from .kinds_builtin import footfall_today as footfall_today
from .kinds_model import Decoder as Decoder
from .kinds_model import Encoder as Encoder
from .kinds_model import EventKind as EventKind
from .kinds_model import Payload as Payload
from .kinds_model import Recorder as Recorder
from .kinds_model import Replayer as Replayer
from .kinds_model import Row as Row
from .kinds_registry import RESERVED_TOPICS as RESERVED_TOPICS
from .kinds_registry import for_tally as for_tally
from .kinds_registry import for_topic as for_topic
from .kinds_registry import named as named
from .kinds_registry import of as of
from .kinds_registry import register as register
from .kinds_registry import registered as registered
from .kinds_registry import unregister as unregister

# isort: split
# --- kinds in modules of their own (each registers itself on import) -------------------

from . import contacts as contacts  # noqa: E402 - needs the registry above
