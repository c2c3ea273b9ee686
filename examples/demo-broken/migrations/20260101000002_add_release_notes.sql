ALTER TABLE releases ADD COLUMN notes VARCHAR(500);
CREATE INDEX releases_version ON releases (version);
