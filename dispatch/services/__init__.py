"""The use-cases, async: intake of reports and alarms, the dispatcher's workflow verbs,
assignments, officers, messages, citizens' accounts and cases, staff log-in, precinct
imports, overdue sweeps.  Each state change is one transaction (through the store)
with its event row, and publishes only after commit.  Shared by HTTP and Socket.IO;
knows neither."""
