"""The typed catalogue of Socket.IO events; `python -m signaling.events` writes its docs."""

from signaling.events.catalogue import CATALOGUE, NAMESPACES, json_schema

__all__ = ["CATALOGUE", "NAMESPACES", "json_schema"]
