/**
 * The SQLite schema as numbered migrations. Migration n brings a database from version n-1 to n;
 * `schema_version` holds the version reached. Released migrations are never edited: a change is
 * a new migration appended here (and a fixture database of the old version in the tests).
 */
export const migrations: readonly string[] = [
  // 1: the first schema.
  `
  CREATE TABLE messages (
    id TEXT PRIMARY KEY,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    qos INTEGER NOT NULL CHECK (qos IN (0, 1, 2)),
    retain INTEGER NOT NULL,
    properties TEXT,
    expires_at INTEGER,
    sender_id TEXT,
    -- queue entries + inflight entries + retained topics naming this message
    refs INTEGER NOT NULL DEFAULT 0
  );
  CREATE TABLE sessions (
    client_id TEXT PRIMARY KEY,
    expiry_interval INTEGER NOT NULL,
    expires_at INTEGER,
    will_topic TEXT,
    will_payload BLOB,
    will_qos INTEGER,
    will_retain INTEGER,
    will_properties TEXT,
    will_at INTEGER
  );
  CREATE TABLE subscriptions (
    client_id TEXT NOT NULL,
    topic_filter TEXT NOT NULL,
    qos INTEGER NOT NULL CHECK (qos IN (0, 1, 2)),
    no_local INTEGER NOT NULL,
    retain_as_published INTEGER NOT NULL,
    retain_handling INTEGER NOT NULL CHECK (retain_handling IN (0, 1, 2)),
    subscription_identifier INTEGER,
    PRIMARY KEY (client_id, topic_filter)
  ) WITHOUT ROWID;
  CREATE TABLE queue (
    client_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    message_id TEXT NOT NULL,
    qos INTEGER NOT NULL CHECK (qos IN (0, 1, 2)),
    retain INTEGER NOT NULL,
    subscription_ids TEXT,
    PRIMARY KEY (client_id, seq)
  ) WITHOUT ROWID;
  CREATE TABLE inflight (
    client_id TEXT NOT NULL,
    packet_id INTEGER NOT NULL CHECK (packet_id BETWEEN 1 AND 65535),
    seq INTEGER NOT NULL,
    message_id TEXT NOT NULL,
    qos INTEGER NOT NULL CHECK (qos IN (0, 1, 2)),
    retain INTEGER NOT NULL,
    subscription_ids TEXT,
    state TEXT NOT NULL CHECK (state IN ('publish', 'pubrel')),
    PRIMARY KEY (client_id, packet_id)
  ) WITHOUT ROWID;
  CREATE TABLE inbound_qos2 (
    client_id TEXT NOT NULL,
    packet_id INTEGER NOT NULL,
    PRIMARY KEY (client_id, packet_id)
  ) WITHOUT ROWID;
  CREATE TABLE retained (
    topic TEXT PRIMARY KEY,
    message_id TEXT NOT NULL
  ) WITHOUT ROWID;
  `,
  // 2: the generation of the operation log (journal.ts) that the tables cover.
  `
  CREATE TABLE oplog_state (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    -- the log generation, and the offset in it, up to which the tables hold the records
    applied INTEGER NOT NULL,
    applied_offset INTEGER NOT NULL
  );
  INSERT INTO oplog_state (id, applied, applied_offset) VALUES (1, 0, 0);
  -- what a queued message counts against its session's byte bounds, so that a restart sums it
  -- per session without reading the messages
  ALTER TABLE queue ADD COLUMN bytes INTEGER NOT NULL DEFAULT 0;
  UPDATE queue SET bytes = coalesce((SELECT 64 + length(m.topic) + length(m.payload) + coalesce(length(m.properties), 0)
    FROM messages m WHERE m.id = queue.message_id), 0);
  `,
];
