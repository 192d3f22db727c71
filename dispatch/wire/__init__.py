"""The shapes that cross the wire, shared by HTTP (`dispatch.http`) and Socket.IO
(`signaling`): request and response models (`models`), the one incident shape every
event, snapshot and staff answer carries (`incident_view`: `IncidentView`, from which
the transports' models derive, and its rendering), and the checks both transports apply
to a decoded payload (`validation`).  Pure: msgspec structs and functions over domain
values, no I/O."""
