-- micro-110 initial schema.
-- PostgreSQL is the system of record: every state change writes its rows and one
-- incident_events row (the audit trail and the real-time feed) in one transaction.

CREATE TABLE precincts (
    code        text PRIMARY KEY,
    name        text NOT NULL,
    geometry    jsonb NOT NULL,            -- GeoJSON (Multi)Polygon, WGS84
    source      text NOT NULL DEFAULT '',
    active      boolean NOT NULL DEFAULT true,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- One row per import; servers reload their spatial index when a new one commits.
CREATE TABLE precinct_imports (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source        text NOT NULL,
    datum         text NOT NULL,
    accepted      integer NOT NULL,
    rejected      integer NOT NULL,
    report        jsonb NOT NULL DEFAULT '[]',
    imported_at   timestamptz NOT NULL DEFAULT now()
);

-- Tag table: severities are configuration an administrator tunes.
CREATE TABLE tags (
    code          text PRIMARY KEY,
    label         text NOT NULL,
    label_zh      text NOT NULL DEFAULT '',
    severity      smallint NOT NULL CHECK (severity BETWEEN 1 AND 4),  -- 1 = most severe
    active        boolean NOT NULL DEFAULT true
);

INSERT INTO tags (code, label, label_zh, severity) VALUES
    ('kidnapping',        'Kidnapping',        '绑架',     1),
    ('robbery',           'Robbery',           '抢劫',     1),
    ('assault',           'Assault',           '伤害',     1),
    ('domestic_violence', 'Domestic violence', '家庭暴力', 1),
    ('fire',              'Fire',              '火灾',     1),
    ('medical',           'Medical emergency', '急救',     2),
    ('traffic_accident',  'Traffic accident',  '交通事故', 2),
    ('suspicious',        'Suspicious activity', '可疑情况', 3),
    ('other',             'Other',             '其他',     4);

CREATE TABLE users (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    username       text NOT NULL,
    display_name   text NOT NULL,
    role           text NOT NULL CHECK (role IN ('dispatcher', 'commander', 'officer', 'admin')),
    password_hash  text NOT NULL,              -- argon2id
    active         boolean NOT NULL DEFAULT true,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX users_username_key ON users (lower(username));

-- The precincts a dispatcher or officer works; commanders and admins see all.
CREATE TABLE user_precincts (
    user_id        bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    precinct_code  text NOT NULL REFERENCES precincts (code) ON UPDATE CASCADE,
    PRIMARY KEY (user_id, precinct_code)
);

-- Staff tokens carry a session id; logout revokes the session.
CREATE TABLE staff_sessions (
    id          uuid PRIMARY KEY,
    user_id     bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    revoked_at  timestamptz
);

CREATE TABLE officers (
    user_id        bigint PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    callsign       text NOT NULL UNIQUE,
    status         text NOT NULL DEFAULT 'off_duty'
                   CHECK (status IN ('off_duty', 'available', 'busy')),
    lon            double precision,
    lat            double precision,
    accuracy_m     double precision,
    position_at    timestamptz,
    position_precinct text,
    updated_at     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE citizens (
    id                   uuid PRIMARY KEY,
    device_id            text NOT NULL,
    verification         text NOT NULL DEFAULT 'anonymous'
                         CHECK (verification IN ('anonymous', 'phone', 'real_name', 'face')),
    phone_hash           text,
    phone_masked         text,
    real_name            text,
    national_id_hash     text,
    national_id_masked   text,
    verified_by          text,
    verified_at          timestamptz,
    false_alarms         integer NOT NULL DEFAULT 0,
    valid_reports        integer NOT NULL DEFAULT 0,
    token_generation     integer NOT NULL DEFAULT 0,   -- bump to revoke refresh tokens
    created_at           timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX citizens_national_id_hash ON citizens (national_id_hash);

CREATE TABLE phone_challenges (
    id           uuid PRIMARY KEY,
    citizen_id   uuid NOT NULL REFERENCES citizens (id) ON DELETE CASCADE,
    phone_hash   text NOT NULL,
    phone_masked text NOT NULL,
    code_hash    text NOT NULL,
    attempts     integer NOT NULL DEFAULT 0,
    expires_at   timestamptz NOT NULL,
    consumed_at  timestamptz,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX phone_challenges_citizen ON phone_challenges (citizen_id, created_at);

-- The real-name registry loaded by `micro110 identity import`: only keyed hashes.
CREATE TABLE identity_registry (
    national_id_hash  text PRIMARY KEY,
    name_hash         text NOT NULL,
    imported_at       timestamptz NOT NULL DEFAULT now()
);

-- Attestation nonces seen, so a replayed attestation is refused.
CREATE TABLE attestation_nonces (
    provider    text NOT NULL,
    nonce       text NOT NULL,
    expires_at  timestamptz NOT NULL,
    seen_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (provider, nonce)
);

-- Every read of a reporter's identity, by whom and why.
CREATE TABLE identity_reads (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    citizen_id  uuid NOT NULL REFERENCES citizens (id) ON DELETE CASCADE,
    actor_kind  text NOT NULL,
    actor_id    text NOT NULL,
    purpose     text NOT NULL,
    read_at     timestamptz NOT NULL DEFAULT now()
);

-- Case numbers are <prefix>-<yyyymmdd>-<n>, n from this sequence: unique without a lock.
CREATE SEQUENCE case_number_seq;

CREATE TABLE incidents (
    id                     uuid PRIMARY KEY,
    case_no                text NOT NULL UNIQUE,
    state                  text NOT NULL,
    channel                text NOT NULL CHECK (channel IN ('alarm', 'text', 'video')),
    tag                    text NOT NULL REFERENCES tags (code),
    severity               smallint NOT NULL,
    citizen_id             uuid REFERENCES citizens (id),
    verification           text NOT NULL,          -- the reporter's level when reported
    precinct_code          text REFERENCES precincts (code) ON UPDATE CASCADE,
    jurisdiction           text NOT NULL CHECK (jurisdiction IN ('inside', 'out_of_jurisdiction', 'unknown')),
    nearest_precinct_code  text,
    distance_m             double precision,
    lon                    double precision,        -- WGS84
    lat                    double precision,
    accuracy_m             double precision,
    received_at            timestamptz NOT NULL,
    priority_credit_s      double precision NOT NULL DEFAULT 0,
    priority_score         double precision NOT NULL,  -- epoch seconds, lower = first
    claimed_by             bigint REFERENCES users (id),
    claimed_at             timestamptz,
    merged_into            uuid REFERENCES incidents (id),
    escalated_at           timestamptz,
    disposition            text,
    resolved_at            timestamptz,
    closed_at              timestamptz,
    overdue_at             timestamptz,
    cancelled_at           timestamptz,
    cancel_reason          text,
    invalid_reason         text,
    transfer               jsonb,
    rating                 smallint CHECK (rating BETWEEN 1 AND 5),
    rating_comment         text,
    tracking_token_hash    text NOT NULL,
    version                integer NOT NULL DEFAULT 0,
    updated_at             timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX incidents_open ON incidents (precinct_code, priority_score)
    WHERE state IN ('queued', 'claimed', 'assigned', 'escalated');
CREATE INDEX incidents_citizen ON incidents (citizen_id, received_at);
CREATE INDEX incidents_received ON incidents (received_at);

CREATE TABLE reports (
    id                uuid PRIMARY KEY,
    incident_id       uuid NOT NULL REFERENCES incidents (id),
    citizen_id        uuid NOT NULL REFERENCES citizens (id),
    channel           text NOT NULL,
    idempotency_key   text NOT NULL,
    text              text,
    tag               text NOT NULL,
    lon               double precision,         -- as sent, in `datum`
    lat               double precision,
    datum             text,
    accuracy_m        double precision,
    location_source   text NOT NULL DEFAULT 'device'
                      CHECK (location_source IN ('device', 'exif', 'none')),
    client_time       timestamptz,
    received_at       timestamptz NOT NULL,
    response          jsonb NOT NULL,           -- what we answered, returned again on retry
    UNIQUE (citizen_id, idempotency_key)
);

CREATE TABLE attachments (
    id            uuid PRIMARY KEY,
    incident_id   uuid NOT NULL REFERENCES incidents (id),
    report_id     uuid REFERENCES reports (id),
    kind          text NOT NULL CHECK (kind IN ('image', 'video', 'audio', 'snapshot')),
    media_type    text NOT NULL,
    sha256        text NOT NULL,
    bytes         bigint NOT NULL,
    width         integer,
    height        integer,
    storage_key   text NOT NULL,               -- path under the data directory
    exif_lon      double precision,
    exif_lat      double precision,
    taken_at      timestamp,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX attachments_incident ON attachments (incident_id);

CREATE TABLE alarm_trail (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    incident_id   uuid NOT NULL REFERENCES incidents (id),
    lon           double precision NOT NULL,
    lat           double precision NOT NULL,
    accuracy_m    double precision,
    recorded_at   timestamptz,
    received_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX alarm_trail_incident ON alarm_trail (incident_id, id);

CREATE TABLE incident_links (
    incident_id  uuid NOT NULL REFERENCES incidents (id),
    other_id     uuid NOT NULL REFERENCES incidents (id),
    kind         text NOT NULL CHECK (kind IN ('possible_duplicate')),
    distance_m   double precision,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (incident_id, other_id, kind)
);

CREATE TABLE assignments (
    id             uuid PRIMARY KEY,
    incident_id    uuid NOT NULL REFERENCES incidents (id),
    officer_id     bigint NOT NULL REFERENCES users (id),
    assigned_by    bigint REFERENCES users (id),
    state          text NOT NULL CHECK (state IN (
                       'offered', 'accepted', 'declined', 'en_route', 'on_scene',
                       'cleared', 'cancelled', 'unacknowledged')),
    offers         integer NOT NULL DEFAULT 1,
    offered_at     timestamptz NOT NULL,
    next_offer_at  timestamptz,
    acked_at       timestamptz,
    updated_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX assignments_officer ON assignments (officer_id, state);
CREATE INDEX assignments_incident ON assignments (incident_id);

CREATE TABLE messages (
    id           uuid PRIMARY KEY,
    incident_id  uuid NOT NULL REFERENCES incidents (id),
    sender_kind  text NOT NULL CHECK (sender_kind IN ('citizen', 'staff', 'system')),
    sender_id    text NOT NULL,
    body         text NOT NULL,
    client_key   text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (incident_id, sender_kind, sender_id, client_key)
);
CREATE INDEX messages_incident ON messages (incident_id, created_at);

-- The audit trail and the real-time feed.  `seq` is assigned under a transaction
-- advisory lock (see the store), so seq order is commit order and a reader resuming
-- "after seq N" can never skip a late-committing lower seq.
CREATE SEQUENCE incident_event_seq;
CREATE TABLE incident_events (
    seq            bigint PRIMARY KEY DEFAULT nextval('incident_event_seq'),
    type           text NOT NULL,
    incident_id    uuid REFERENCES incidents (id),
    precinct_code  text,
    citizen_id     uuid,
    officer_id     bigint,
    actor_kind     text NOT NULL CHECK (actor_kind IN ('citizen', 'staff', 'system')),
    actor_id       text NOT NULL,
    payload        jsonb NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX incident_events_incident ON incident_events (incident_id, seq);
CREATE INDEX incident_events_precinct ON incident_events (precinct_code, seq);
CREATE INDEX incident_events_citizen ON incident_events (citizen_id, seq) WHERE citizen_id IS NOT NULL;
CREATE INDEX incident_events_officer ON incident_events (officer_id, seq) WHERE officer_id IS NOT NULL;

-- Signing and hashing keys generated once per database, so every app node shares
-- them; MICRO110_SECRET_KEY / MICRO110_ID_HASH_KEY in the environment take precedence.
CREATE TABLE server_secrets (
    name        text PRIMARY KEY,
    value       text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
