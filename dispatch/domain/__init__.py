"""The domain model, pure and synchronous: incidents and their transition table,
priority, identity levels, users and roles, duplicates, the citizen's view of a case,
event actors, and the one exception tree with stable machine codes (`errors`).  Plain
values and functions over them; imports no I/O library and nothing else of the
project, so every other package may use it."""
