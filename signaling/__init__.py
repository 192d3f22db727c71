"""The Socket.IO transport: the `/console`, `/officer` and `/citizen` namespaces (auth on
connect, verbs as acked events), the feed hub that fans committed events out to rooms
and replays what a reconnecting client missed, who may see which event (`audiences`),
and the typed event catalogue (`events`).  Calls `dispatch` services; never the store."""
