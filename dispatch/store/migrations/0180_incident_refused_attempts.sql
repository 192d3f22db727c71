-- How many of the reporter's alarms, reports and messages the intake budgets refused
-- (over the last day), kept on their latest open incident so the dispatcher sees it.
ALTER TABLE incidents ADD COLUMN refused_attempts integer NOT NULL DEFAULT 0;
