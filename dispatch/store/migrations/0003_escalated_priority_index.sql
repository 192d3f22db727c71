-- A commander's "next" takes escalated incidents first, in priority order: walked
-- like the queued ones (0002), never sorted whole.
CREATE INDEX incidents_escalated_priority ON incidents (priority_score, id)
    WHERE state = 'escalated';

-- (No schema change, a note on 0001: the feed's advisory lock is now taken in shared
-- mode, so writers commit concurrently and `seq` order is no longer commit order;
-- readers restore the order, see dispatch/store/events.py.)
