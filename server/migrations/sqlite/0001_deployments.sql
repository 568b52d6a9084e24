-- Deployments, their steps (JSON, in order) and change-set summary, and their stack events.
CREATE TABLE deployments (
    id              TEXT PRIMARY KEY,
    project         TEXT NOT NULL,
    environment     TEXT NOT NULL,
    stack_name      TEXT NOT NULL,
    build           TEXT NOT NULL,
    status          TEXT NOT NULL,
    operation       TEXT,
    step            TEXT,
    actor           TEXT NOT NULL,
    started_at      TEXT NOT NULL,
    finished_at     TEXT,
    message         TEXT,
    rolled_back     INTEGER NOT NULL DEFAULT 0,
    resources_total INTEGER,
    resources_done  INTEGER NOT NULL DEFAULT 0,
    stack_id        TEXT,
    change_set_name TEXT,
    change_set      TEXT,
    steps           TEXT NOT NULL DEFAULT '[]'
);

-- At most one active deployment per stack, whatever the number of deployer processes.
CREATE UNIQUE INDEX one_active_deployment_per_stack
    ON deployments (environment, stack_name) WHERE finished_at IS NULL;

CREATE INDEX deployments_by_stack ON deployments (project, environment);

CREATE TABLE stack_events (
    deployment_id TEXT NOT NULL REFERENCES deployments (id),
    event_id      TEXT NOT NULL,
    timestamp     TEXT NOT NULL,
    logical_id    TEXT NOT NULL,
    resource_type TEXT NOT NULL,
    status        TEXT NOT NULL,
    reason        TEXT,
    PRIMARY KEY (deployment_id, event_id)
);
