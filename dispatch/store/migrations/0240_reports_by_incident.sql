-- The console's queue annotations read each open incident's first report
-- (dispatch/store/console.py queue_annotations): without this index, one scan of every
-- report per open incident, so a console opening on 100,000 open incidents never got
-- its annotations (found by bench/restart.py).
CREATE INDEX reports_incident ON reports (incident_id, received_at);
