-- Gateway support.
--
-- registry_changes: one counter bumped by triggers on every table the gateway's identity cache is built from, so a
-- gateway notices any registry change (made by this process or another one, e.g. `onboard account create`) by
-- polling one integer, and reloads its cache only when something changed.
--
-- retained_messages: MQTT retained messages (one per topic per account and region), kept across restarts.

CREATE TABLE registry_changes (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    counter INTEGER NOT NULL
);
INSERT INTO registry_changes (id, counter) VALUES (1, 0);

CREATE TRIGGER accounts_insert_changes AFTER INSERT ON accounts BEGIN UPDATE registry_changes SET counter = counter + 1 WHERE id = 1; END;
CREATE TRIGGER accounts_update_changes AFTER UPDATE ON accounts BEGIN UPDATE registry_changes SET counter = counter + 1 WHERE id = 1; END;
CREATE TRIGGER accounts_delete_changes AFTER DELETE ON accounts BEGIN UPDATE registry_changes SET counter = counter + 1 WHERE id = 1; END;

CREATE TRIGGER certificates_insert_changes AFTER INSERT ON certificates BEGIN UPDATE registry_changes SET counter = counter + 1 WHERE id = 1; END;
CREATE TRIGGER certificates_update_changes AFTER UPDATE ON certificates BEGIN UPDATE registry_changes SET counter = counter + 1 WHERE id = 1; END;
CREATE TRIGGER certificates_delete_changes AFTER DELETE ON certificates BEGIN UPDATE registry_changes SET counter = counter + 1 WHERE id = 1; END;

CREATE TRIGGER ca_certificates_insert_changes AFTER INSERT ON ca_certificates BEGIN UPDATE registry_changes SET counter = counter + 1 WHERE id = 1; END;
CREATE TRIGGER ca_certificates_update_changes AFTER UPDATE ON ca_certificates BEGIN UPDATE registry_changes SET counter = counter + 1 WHERE id = 1; END;
CREATE TRIGGER ca_certificates_delete_changes AFTER DELETE ON ca_certificates BEGIN UPDATE registry_changes SET counter = counter + 1 WHERE id = 1; END;

CREATE TRIGGER policies_insert_changes AFTER INSERT ON policies BEGIN UPDATE registry_changes SET counter = counter + 1 WHERE id = 1; END;
CREATE TRIGGER policies_update_changes AFTER UPDATE ON policies BEGIN UPDATE registry_changes SET counter = counter + 1 WHERE id = 1; END;
CREATE TRIGGER policies_delete_changes AFTER DELETE ON policies BEGIN UPDATE registry_changes SET counter = counter + 1 WHERE id = 1; END;

CREATE TRIGGER policy_versions_insert_changes AFTER INSERT ON policy_versions BEGIN UPDATE registry_changes SET counter = counter + 1 WHERE id = 1; END;
CREATE TRIGGER policy_versions_update_changes AFTER UPDATE ON policy_versions BEGIN UPDATE registry_changes SET counter = counter + 1 WHERE id = 1; END;
CREATE TRIGGER policy_versions_delete_changes AFTER DELETE ON policy_versions BEGIN UPDATE registry_changes SET counter = counter + 1 WHERE id = 1; END;

CREATE TRIGGER policy_targets_insert_changes AFTER INSERT ON policy_targets BEGIN UPDATE registry_changes SET counter = counter + 1 WHERE id = 1; END;
CREATE TRIGGER policy_targets_update_changes AFTER UPDATE ON policy_targets BEGIN UPDATE registry_changes SET counter = counter + 1 WHERE id = 1; END;
CREATE TRIGGER policy_targets_delete_changes AFTER DELETE ON policy_targets BEGIN UPDATE registry_changes SET counter = counter + 1 WHERE id = 1; END;

CREATE TRIGGER thing_principals_insert_changes AFTER INSERT ON thing_principals BEGIN UPDATE registry_changes SET counter = counter + 1 WHERE id = 1; END;
CREATE TRIGGER thing_principals_update_changes AFTER UPDATE ON thing_principals BEGIN UPDATE registry_changes SET counter = counter + 1 WHERE id = 1; END;
CREATE TRIGGER thing_principals_delete_changes AFTER DELETE ON thing_principals BEGIN UPDATE registry_changes SET counter = counter + 1 WHERE id = 1; END;

CREATE TRIGGER thing_group_members_insert_changes AFTER INSERT ON thing_group_members BEGIN UPDATE registry_changes SET counter = counter + 1 WHERE id = 1; END;
CREATE TRIGGER thing_group_members_update_changes AFTER UPDATE ON thing_group_members BEGIN UPDATE registry_changes SET counter = counter + 1 WHERE id = 1; END;
CREATE TRIGGER thing_group_members_delete_changes AFTER DELETE ON thing_group_members BEGIN UPDATE registry_changes SET counter = counter + 1 WHERE id = 1; END;

CREATE TRIGGER thing_groups_insert_changes AFTER INSERT ON thing_groups BEGIN UPDATE registry_changes SET counter = counter + 1 WHERE id = 1; END;
CREATE TRIGGER thing_groups_update_changes AFTER UPDATE ON thing_groups BEGIN UPDATE registry_changes SET counter = counter + 1 WHERE id = 1; END;
CREATE TRIGGER thing_groups_delete_changes AFTER DELETE ON thing_groups BEGIN UPDATE registry_changes SET counter = counter + 1 WHERE id = 1; END;

CREATE TRIGGER things_insert_changes AFTER INSERT ON things BEGIN UPDATE registry_changes SET counter = counter + 1 WHERE id = 1; END;
CREATE TRIGGER things_update_changes AFTER UPDATE ON things BEGIN UPDATE registry_changes SET counter = counter + 1 WHERE id = 1; END;
CREATE TRIGGER things_delete_changes AFTER DELETE ON things BEGIN UPDATE registry_changes SET counter = counter + 1 WHERE id = 1; END;

CREATE TABLE retained_messages (
    account_id TEXT NOT NULL,
    region     TEXT NOT NULL,
    topic      TEXT NOT NULL,
    payload    BLOB NOT NULL,
    qos        INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL,
    PRIMARY KEY (account_id, region, topic)
);
