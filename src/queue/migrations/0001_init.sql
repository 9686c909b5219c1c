-- 0001: enrollments, their steps, their encrypted images, and the queue's own metadata and event log.
-- States are checked TEXT so a bad write fails loudly instead of leaving a row no code understands.

CREATE TABLE enrollment (
    id              INTEGER PRIMARY KEY,
    reference       TEXT    NOT NULL UNIQUE,
    email           TEXT    NOT NULL,
    phone           TEXT    NOT NULL,
    state           TEXT    NOT NULL DEFAULT 'pending'
                    CHECK (state IN ('pending', 'in_flight', 'done', 'needs_user', 'failed')),
    created_at_ms   INTEGER NOT NULL,   -- wall clock, for display only
    updated_at_ms   INTEGER NOT NULL,   -- wall clock, for display only
    age_ms          INTEGER NOT NULL DEFAULT 0,  -- time observed on a monotonic clock while the queue ran
    attempts        INTEGER NOT NULL DEFAULT 0,
    document_id     TEXT,
    face_score      REAL,
    last_error_code TEXT,
    last_error_step TEXT,
    last_http_status INTEGER,
    image_bytes     INTEGER NOT NULL DEFAULT 0, -- plaintext bytes of images still stored
    document_restarts INTEGER NOT NULL DEFAULT 0 -- times the server lost the document session
);

CREATE TABLE step (
    id              INTEGER PRIMARY KEY,
    enrollment_id   INTEGER NOT NULL REFERENCES enrollment(id) ON DELETE CASCADE,
    kind            TEXT    NOT NULL CHECK (kind IN ('document', 'face', 'liveness', 'request')),
    seq             INTEGER NOT NULL,
    state           TEXT    NOT NULL DEFAULT 'pending'
                    CHECK (state IN ('pending', 'in_flight', 'done', 'needs_user', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    ambiguous       INTEGER NOT NULL DEFAULT 0,  -- sends whose answer never came
    next_attempt_ms INTEGER NOT NULL DEFAULT 0,  -- wall clock; re-based at open so a clock jump cannot stall it
    lease_until_ms  INTEGER,
    last_error_code TEXT,
    last_http_status INTEGER,
    document_id     TEXT,
    score           REAL,
    reencoded       INTEGER NOT NULL DEFAULT 0,  -- images re-encoded smaller after a 413 (done at most once)
    UNIQUE (enrollment_id, kind),
    UNIQUE (enrollment_id, seq)
);

CREATE INDEX step_due ON step (state, next_attempt_ms);

CREATE TABLE image (
    id        INTEGER PRIMARY KEY,
    step_id   INTEGER NOT NULL REFERENCES step(id) ON DELETE CASCADE,
    role      TEXT    NOT NULL CHECK (role IN ('front', 'back', 'side', 'face', 'liveness')),
    plain_len INTEGER NOT NULL CHECK (plain_len >= 0),
    nonce     BLOB    NOT NULL CHECK (length(nonce) = 8),
    data      BLOB    NOT NULL,  -- chunked AES-256-GCM, see src/queue/crypto.rs
    UNIQUE (step_id, role)
);

CREATE INDEX image_step ON image (step_id);

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value
);

CREATE TABLE event_log (
    id     INTEGER PRIMARY KEY,
    at_ms  INTEGER NOT NULL,
    kind   TEXT    NOT NULL,
    detail TEXT    NOT NULL
);
