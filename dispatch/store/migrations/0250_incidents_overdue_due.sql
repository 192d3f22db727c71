-- The overdue sweep (every node, every 5 s) looks for queued incidents not yet marked
-- overdue, the longest waiting first.  Without this index it walked every queued
-- incident, those marked overdue long ago included, so under a flood (open incidents
-- growing by thousands a minute) each sweep cost more than the last.  This holds only
-- the ones still to be marked: the few seconds' to minutes' worth below the thresholds.
CREATE INDEX incidents_overdue_due ON incidents (received_at)
    WHERE state = 'queued' AND overdue_at IS NULL;
