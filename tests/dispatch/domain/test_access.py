"""The officer's view of an incident's history: which events it keeps."""

from dispatch.domain.access import in_officer_history
from dispatch.domain.events import EventType


def _message(thread: str | None) -> dict[str, object]:
    message: dict[str, object] = {"body": "hello"}
    if thread is not None:
        message["thread"] = thread
    return {"message": message, "sender_kind": "dispatcher"}


def test_the_officers_chat_is_kept_and_the_reporters_is_not() -> None:
    assert in_officer_history(EventType.MESSAGE_CREATED, _message("officers"))
    assert not in_officer_history(EventType.MESSAGE_CREATED, _message("reporter"))
    # Messages from before threads were all with the reporter.
    assert not in_officer_history(EventType.MESSAGE_CREATED, _message(None))


def test_workflow_events_follow_the_table() -> None:
    assert in_officer_history(EventType.INCIDENT_CREATED, {})
    assert in_officer_history(EventType.ASSIGNMENT_ON_SCENE, {})
    assert not in_officer_history(EventType.INCIDENT_CLAIMED, {})
