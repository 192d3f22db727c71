"""The shapes that cross the wire, shared by HTTP (`dispatch.http`) and Socket.IO
(`signaling`): request and response models (`models`), the incident as every event
and snapshot carries it (`incident_view`), and the checks both transports apply to a
decoded payload (`validation`).  Pure: msgspec structs and functions over domain
values, no I/O."""
