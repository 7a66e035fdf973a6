"""dealstream: a streaming event-processing backbone for sales management.

The layers live at the top level of the repository and are importable as
``dealstream.<layer>``: ``schemas`` (Avro schemas and codec), ``broker`` (Kafka plumbing),
``models`` (online River models), ``connectors`` (sources), ``sinks`` (ClickHouse, alert
topics), ``streams`` (the faust worker that wires them) and ``cli`` on top.
"""

from __future__ import annotations

__version__ = "0.1.0"
