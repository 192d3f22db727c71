"""The incident lifecycle's transition table, checked directly, cell by cell."""

from __future__ import annotations

import pytest

from dispatch.domain.errors import InvalidTransition
from dispatch.domain.incidents import OPEN_STATES, TRANSITIONS, Action, IncidentState, transition

S = IncidentState
OPEN = {S.QUEUED, S.CLAIMED, S.ASSIGNED, S.ESCALATED}

# The lifecycle written out once more, by hand: action -> (from, to).
EXPECTED: dict[Action, tuple[set[IncidentState], IncidentState]] = {
    Action.CLAIM: ({S.QUEUED, S.ESCALATED}, S.CLAIMED),
    Action.RELEASE: ({S.CLAIMED}, S.QUEUED),
    Action.ASSIGN: ({S.CLAIMED, S.ASSIGNED, S.ESCALATED}, S.ASSIGNED),
    Action.ESCALATE: ({S.QUEUED, S.CLAIMED, S.ASSIGNED}, S.ESCALATED),
    Action.RESOLVE: ({S.CLAIMED, S.ASSIGNED, S.ESCALATED}, S.RESOLVED),
    Action.CLOSE: ({S.RESOLVED, S.INVALID, S.TRANSFERRED, S.CANCELLED}, S.CLOSED),
    Action.MERGE: (OPEN, S.MERGED),
    Action.UNMERGE: ({S.MERGED}, S.QUEUED),
    Action.MARK_INVALID: ({S.QUEUED, S.CLAIMED, S.ESCALATED}, S.INVALID),
    Action.TRANSFER: (OPEN, S.TRANSFERRED),
    Action.REROUTE: ({S.QUEUED, S.CLAIMED, S.ESCALATED}, S.QUEUED),
    Action.CANCEL: ({S.QUEUED}, S.CANCELLED),
}


def test_every_action_has_a_row_and_the_rows_are_the_lifecycle() -> None:
    assert set(TRANSITIONS) == set(Action)
    assert {action: (set(allowed), to) for action, (allowed, to) in TRANSITIONS.items()} == (
        EXPECTED
    )
    assert set(OPEN_STATES) == OPEN
    assert all(state.is_open == (state in OPEN) for state in IncidentState)


@pytest.mark.parametrize("action", list(Action))
@pytest.mark.parametrize("state", list(IncidentState))
def test_each_cell_moves_or_refuses_naming_both_states(
    state: IncidentState, action: Action
) -> None:
    allowed, target = EXPECTED[action]
    if state in allowed:
        assert transition(state, action) is target
        return
    with pytest.raises(InvalidTransition) as refused:
        transition(state, action)
    message = str(refused.value)
    assert state.value in message and target.value in message
    assert refused.value.code == "invalid_transition"


def test_closed_is_final_and_nothing_leaves_it() -> None:
    assert all(S.CLOSED not in allowed for allowed, _ in TRANSITIONS.values())
