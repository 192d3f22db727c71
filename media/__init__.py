"""WebRTC media (aiortc): peer sessions, recording, relay.  Knows nothing of incidents
beyond an id and imports nothing of `dispatch`: it declares the Protocols it needs and
`dispatch` implements them."""
