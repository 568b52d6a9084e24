-- The last listing of each project's build folders, so that the first page after a restart is
-- served at once (and re-listed in the background) instead of waiting on S3. `source` is the
-- bucket and prefix it was listed from; `files` is JSON: folder → [[file name, last modified]].
CREATE TABLE listings (
    project TEXT PRIMARY KEY,
    source TEXT NOT NULL,
    files TEXT NOT NULL,
    listed_at TEXT NOT NULL
);
