-- Staff reading a report's evidence (photos) through the console: every read is
-- recorded, as identity reads are (graphic media and bystanders' faces are personal data).
CREATE TABLE evidence_reads (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    attachment_id  uuid NOT NULL REFERENCES attachments (id),
    incident_id    uuid NOT NULL REFERENCES incidents (id),
    actor_kind     text NOT NULL,
    actor_id       text NOT NULL,
    purpose        text NOT NULL,
    read_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX evidence_reads_attachment ON evidence_reads (attachment_id, read_at);
CREATE INDEX evidence_reads_actor ON evidence_reads (actor_kind, actor_id, read_at);
