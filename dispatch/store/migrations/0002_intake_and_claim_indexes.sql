-- Two lookups that scanned every open incident, so slowed down as the queue grew: a
-- flood of alarms is exactly when intake and claims must stay fast.

-- Possible duplicates at intake: open incidents in a small lon/lat box.  (The
-- received_at index alone scans every incident of the last half hour.)  This scans a
-- narrow band of latitude and checks longitude in the index.
CREATE INDEX incidents_open_position ON incidents (lat, lon)
    WHERE state IN ('queued', 'claimed', 'assigned', 'escalated');

-- "Next": the most urgent queued incident in a dispatcher's scope, skipping those
-- another dispatcher is claiming.  Walked in priority order, the first in scope is
-- usually the first row, instead of sorting the whole queue on every claim.
CREATE INDEX incidents_queued_priority ON incidents (priority_score, id)
    WHERE state = 'queued';
