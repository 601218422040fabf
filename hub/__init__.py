"""The hub: the fleet's server and system of record.

It subscribes to every van (:mod:`hub.ingest`), stores their events in the same schema
as a box, and serves the public map and the staff reports for the whole fleet
(:mod:`hub.server`, ``vanbox hub``). It imports :mod:`telemetry` and :mod:`kiosk`, never
:mod:`firmware`: nothing of the Pi's hardware runs here.
"""
