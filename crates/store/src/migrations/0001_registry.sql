-- Registry schema. Every resource row is keyed by (account_id, region, ...): in AWS a resource belongs to an account
-- AND a region, and one server serves any number of both.
-- Times are unix milliseconds; certificate validity is unix seconds (X.509 has second precision).

CREATE TABLE accounts (
    account_id      TEXT PRIMARY KEY,
    name            TEXT NOT NULL UNIQUE,
    endpoint_prefix TEXT NOT NULL UNIQUE,
    created_ms      INTEGER NOT NULL
);

CREATE TABLE access_keys (
    access_key_id     TEXT PRIMARY KEY,
    account_id        TEXT NOT NULL REFERENCES accounts(account_id),
    secret_access_key TEXT NOT NULL,
    created_ms        INTEGER NOT NULL
);

CREATE TABLE registration_codes (
    account_id TEXT NOT NULL,
    region     TEXT NOT NULL,
    code       TEXT NOT NULL,
    PRIMARY KEY (account_id, region)
);

CREATE TABLE thing_types (
    account_id     TEXT NOT NULL,
    region         TEXT NOT NULL,
    name           TEXT NOT NULL,
    type_id        TEXT NOT NULL,
    properties     TEXT NOT NULL,   -- thingTypeProperties as JSON
    deprecated     INTEGER NOT NULL DEFAULT 0,
    deprecated_ms  INTEGER,
    created_ms     INTEGER NOT NULL,
    PRIMARY KEY (account_id, region, name)
);

CREATE TABLE things (
    account_id    TEXT NOT NULL,
    region        TEXT NOT NULL,
    name          TEXT NOT NULL,
    thing_id      TEXT NOT NULL,
    thing_type    TEXT,
    attributes    TEXT NOT NULL,    -- JSON object of strings
    version       INTEGER NOT NULL,
    billing_group TEXT,
    created_ms    INTEGER NOT NULL,
    PRIMARY KEY (account_id, region, name)
);
CREATE INDEX things_by_type ON things(account_id, region, thing_type);

CREATE TABLE thing_groups (
    account_id  TEXT NOT NULL,
    region      TEXT NOT NULL,
    name        TEXT NOT NULL,
    group_id    TEXT NOT NULL,
    parent      TEXT,
    description TEXT,
    attributes  TEXT NOT NULL,
    version     INTEGER NOT NULL,
    created_ms  INTEGER NOT NULL,
    PRIMARY KEY (account_id, region, name)
);

CREATE TABLE thing_group_members (
    account_id TEXT NOT NULL,
    region     TEXT NOT NULL,
    group_name TEXT NOT NULL,
    thing_name TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    PRIMARY KEY (account_id, region, group_name, thing_name)
);
CREATE INDEX members_by_thing ON thing_group_members(account_id, region, thing_name);

-- A certificate id is sha256(DER), so the same certificate may have a row in several accounts (multi-account
-- registration); within one (account, region) it is unique.
CREATE TABLE certificates (
    account_id       TEXT NOT NULL,
    region           TEXT NOT NULL,
    cert_id          TEXT NOT NULL,
    pem              TEXT NOT NULL,
    ca_cert_id       TEXT,
    status           TEXT NOT NULL,
    mode             TEXT NOT NULL,
    previous_owner   TEXT,
    created_ms       INTEGER NOT NULL,
    modified_ms      INTEGER NOT NULL,
    customer_version INTEGER NOT NULL,
    generation_id    TEXT NOT NULL,
    not_before       INTEGER NOT NULL,
    not_after        INTEGER NOT NULL,
    transfer_to      TEXT,
    transfer_message TEXT,
    reject_reason    TEXT,
    transfer_ms      INTEGER,
    accept_ms        INTEGER,
    reject_ms        INTEGER,
    PRIMARY KEY (account_id, region, cert_id)
);
CREATE INDEX certificates_by_created ON certificates(account_id, region, created_ms, cert_id);
CREATE INDEX certificates_by_ca ON certificates(account_id, region, ca_cert_id);
CREATE INDEX certificates_by_transfer ON certificates(transfer_to, region);
CREATE INDEX certificates_by_id ON certificates(cert_id);

CREATE TABLE ca_certificates (
    account_id          TEXT NOT NULL,
    region              TEXT NOT NULL,
    cert_id             TEXT NOT NULL,
    pem                 TEXT NOT NULL,
    subject_hex         TEXT NOT NULL,   -- DER of the subject name, to find the CA that issued a leaf
    status              TEXT NOT NULL,
    auto_registration   TEXT NOT NULL,
    mode                TEXT NOT NULL,
    registration_config TEXT,            -- JSON, present for JITP
    created_ms          INTEGER NOT NULL,
    modified_ms         INTEGER NOT NULL,
    customer_version    INTEGER NOT NULL,
    generation_id       TEXT NOT NULL,
    not_before          INTEGER NOT NULL,
    not_after           INTEGER NOT NULL,
    PRIMARY KEY (account_id, region, cert_id)
);
CREATE INDEX ca_by_created ON ca_certificates(account_id, region, created_ms, cert_id);
CREATE INDEX ca_by_subject ON ca_certificates(subject_hex);
CREATE INDEX ca_by_id ON ca_certificates(cert_id, region);

CREATE TABLE policies (
    account_id      TEXT NOT NULL,
    region          TEXT NOT NULL,
    name            TEXT NOT NULL,
    default_version INTEGER NOT NULL,
    next_version    INTEGER NOT NULL,
    created_ms      INTEGER NOT NULL,
    modified_ms     INTEGER NOT NULL,
    generation_id   TEXT NOT NULL,
    PRIMARY KEY (account_id, region, name)
);

CREATE TABLE policy_versions (
    account_id    TEXT NOT NULL,
    region        TEXT NOT NULL,
    policy_name   TEXT NOT NULL,
    version_id    INTEGER NOT NULL,
    document      TEXT NOT NULL,
    created_ms    INTEGER NOT NULL,
    generation_id TEXT NOT NULL,
    PRIMARY KEY (account_id, region, policy_name, version_id)
);

-- Targets are ARNs (certificate or thing group) or Cognito identity ids, exactly as AWS reports them.
CREATE TABLE policy_targets (
    account_id  TEXT NOT NULL,
    region      TEXT NOT NULL,
    policy_name TEXT NOT NULL,
    target      TEXT NOT NULL,
    created_ms  INTEGER NOT NULL,
    PRIMARY KEY (account_id, region, policy_name, target)
);
CREATE INDEX policy_targets_by_target ON policy_targets(account_id, region, target);

CREATE TABLE thing_principals (
    account_id     TEXT NOT NULL,
    region         TEXT NOT NULL,
    thing_name     TEXT NOT NULL,
    principal      TEXT NOT NULL,
    principal_type TEXT NOT NULL,
    created_ms     INTEGER NOT NULL,
    PRIMARY KEY (account_id, region, thing_name, principal)
);
CREATE INDEX thing_principals_by_principal ON thing_principals(account_id, region, principal);
