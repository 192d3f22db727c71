"""PostgreSQL, the system of record: connection pools and migrations (`database`),
and one module per aggregate owning its SQL (incidents, citizens, users, precincts,
the event feed, the dispatcher's workflow).  The store writes rows and event rows; it
never publishes, and it knows nothing of HTTP, Socket.IO or Redis."""
