-- Video calls (issue 15).  A call is an incident with channel 'video'; each connection
-- of the citizen's phone is one session (a recording segment) on the node that
-- answered it; staff watching are viewers.  Recordings are attachments of kind 'video'.

CREATE TABLE call_sessions (
    id            uuid PRIMARY KEY,
    incident_id   uuid NOT NULL REFERENCES incidents (id),
    segment       integer NOT NULL,            -- 1, 2, ... (reconnections)
    node          text NOT NULL,               -- the node holding its media
    node_url      text NOT NULL,               -- where other nodes forward pick-ups
    state         text NOT NULL CHECK (state IN ('live', 'ended')),
    storage_key   text NOT NULL,               -- the recording, under the evidence store
    started_at    timestamptz NOT NULL,
    ended_at      timestamptz,
    end_reason    text,
    attachment_id uuid REFERENCES attachments (id),
    reported      boolean NOT NULL DEFAULT false,  -- its node recorded the end (and recording)
    UNIQUE (incident_id, segment)
);
CREATE UNIQUE INDEX call_sessions_one_live ON call_sessions (incident_id) WHERE state = 'live';
CREATE INDEX call_sessions_unreported ON call_sessions (node) WHERE NOT reported;

CREATE TABLE call_viewers (
    id            uuid PRIMARY KEY,
    incident_id   uuid NOT NULL REFERENCES incidents (id),
    session_id    uuid NOT NULL REFERENCES call_sessions (id),
    user_id       bigint NOT NULL REFERENCES users (id),
    talk          boolean NOT NULL,
    node          text NOT NULL,
    node_url      text NOT NULL,
    joined_at     timestamptz NOT NULL,
    left_at       timestamptz,
    leave_reason  text
);
CREATE INDEX call_viewers_incident ON call_viewers (incident_id);

ALTER TABLE attachments
    ADD COLUMN duration_s double precision,
    ADD COLUMN codecs text[];

-- Every fetch of a recording, by whom and which bytes.
CREATE TABLE recording_reads (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    attachment_id  uuid NOT NULL REFERENCES attachments (id),
    incident_id    uuid NOT NULL REFERENCES incidents (id),
    user_id        bigint NOT NULL REFERENCES users (id),
    byte_range     text,
    read_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX recording_reads_attachment ON recording_reads (attachment_id);
