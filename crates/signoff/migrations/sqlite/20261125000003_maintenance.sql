-- Periodic jobs shared by all instances: a job runs only on the instance that advances its row,
-- so expired sessions are swept once per period, not once per instance.
CREATE TABLE maintenance (
    job         TEXT    PRIMARY KEY,
    last_run_ms INTEGER NOT NULL
);
INSERT INTO maintenance (job, last_run_ms) VALUES ('sweep_expired_sessions', 0);
