-- Releases of the demo site, one row per pipeline execution that reached the database.
CREATE TABLE releases (
    id INTEGER PRIMARY KEY,
    version VARCHAR(64) NOT NULL,
    created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
);
