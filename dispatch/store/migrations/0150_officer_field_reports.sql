-- The field officer's page (issue 18).
--
-- Chat threads: a dispatcher talks with the reporter ('reporter', the only thread so
-- far) and, apart from that, with the officers working the incident ('officers').  The
-- reporter never sees the officers' thread; officers never see the reporter's.
ALTER TABLE messages
    ADD COLUMN thread text NOT NULL DEFAULT 'reporter'
        CHECK (thread IN ('reporter', 'officers')),
    -- When and where the sender's phone captured the message (it may have waited in
    -- an outbox on a bad network); NULL when the client did not say.
    ADD COLUMN captured_at timestamptz,
    ADD COLUMN lon double precision,
    ADD COLUMN lat double precision,
    ADD COLUMN accuracy_m double precision;

-- An officer's answers and status steps, by the idempotency key their phone sent: a
-- retry (the ack was lost, the outbox sent it again) gets the first answer, even when
-- the assignment has moved on since.
CREATE TABLE officer_actions (
    officer_id     bigint NOT NULL REFERENCES users (id),
    client_key     text NOT NULL,
    assignment_id  uuid NOT NULL REFERENCES assignments (id),
    action         text NOT NULL,
    result         text NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (officer_id, client_key)
);
CREATE INDEX officer_actions_assignment ON officer_actions (assignment_id);
