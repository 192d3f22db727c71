"""What a server process runs on: connections to PostgreSQL and Redis and the secrets
kept with them (`connections`), the embedded servers used when none is configured,
the clock, the Redis side of the system (the priority queue index, fixed-window
throttles, and `redis_writes`, which sends a node's after-commit Redis traffic in
batches through `batching.GroupCommit`), the after-commit event publisher, the live
precinct index of this process, Prometheus metrics and JSON logging.  Services use
these; none of them holds a business rule."""
