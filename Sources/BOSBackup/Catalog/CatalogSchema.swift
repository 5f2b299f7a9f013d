/// The catalog's schema as an ordered list of migrations; `PRAGMA user_version`
/// says how many have run. Append new migrations, never edit old ones.
enum CatalogSchema {
    static let migrations: [String] = [
        // 1: snapshots, their per-table counts, runs, verifications, audit trail.
        """
        CREATE TABLE snapshots (
            id              TEXT PRIMARY KEY,
            name            TEXT NOT NULL UNIQUE,
            job             TEXT NOT NULL,
            target          TEXT NOT NULL,
            target_url      TEXT NOT NULL,
            object_key      TEXT NOT NULL,
            manifest_key    TEXT NOT NULL,
            taken_at        REAL NOT NULL,
            source          TEXT NOT NULL,
            bytes           INTEGER NOT NULL,
            stored_bytes    INTEGER NOT NULL,
            sha256          TEXT NOT NULL,
            database_sha256 TEXT NOT NULL,
            page_size       INTEGER NOT NULL,
            block_size      INTEGER NOT NULL,
            level           INTEGER NOT NULL,
            encrypted       INTEGER NOT NULL DEFAULT 0,
            state           TEXT NOT NULL DEFAULT 'complete' CHECK (state IN ('complete', 'deleting')),
            cataloged_at    REAL NOT NULL
        );
        CREATE INDEX snapshots_job_time ON snapshots(job, taken_at);
        CREATE INDEX snapshots_time ON snapshots(taken_at);
        CREATE TABLE snapshot_tables (
            snapshot_id TEXT NOT NULL REFERENCES snapshots(id) ON DELETE CASCADE,
            table_name  TEXT NOT NULL,
            row_count   INTEGER NOT NULL,
            PRIMARY KEY (snapshot_id, table_name)
        ) WITHOUT ROWID;
        CREATE TABLE runs (
            id            INTEGER PRIMARY KEY,
            job           TEXT NOT NULL,
            scheduled_for REAL,
            started_at    REAL NOT NULL,
            finished_at   REAL,
            status        TEXT NOT NULL CHECK (status IN ('running', 'success', 'failed', 'abandoned')),
            error         TEXT,
            snapshot_id   TEXT,
            seconds       REAL
        );
        CREATE INDEX runs_job_time ON runs(job, started_at);
        CREATE TABLE verifications (
            id           INTEGER PRIMARY KEY,
            snapshot_id  TEXT NOT NULL,
            verified_at  REAL NOT NULL,
            ok           INTEGER NOT NULL,
            checksum_ok  INTEGER NOT NULL,
            gzip_ok      INTEGER NOT NULL,
            integrity_ok INTEGER NOT NULL,
            counts_ok    INTEGER NOT NULL,
            seconds      REAL NOT NULL,
            problems     TEXT NOT NULL
        );
        CREATE INDEX verifications_snapshot ON verifications(snapshot_id, verified_at);
        CREATE TABLE audit (
            id          INTEGER PRIMARY KEY,
            at          REAL NOT NULL,
            actor       TEXT NOT NULL,
            action      TEXT NOT NULL,
            snapshot_id TEXT,
            detail      TEXT NOT NULL
        );
        """,
        // 2: restore drills and their reports.
        """
        CREATE TABLE drills (
            id          INTEGER PRIMARY KEY,
            started_at  REAL NOT NULL,
            finished_at REAL NOT NULL,
            ok          INTEGER NOT NULL,
            seconds     REAL NOT NULL,
            rto_seconds REAL NOT NULL,
            report      TEXT,
            summary     TEXT NOT NULL
        );
        """,
        // 3: the manifest's own checksum, so a changed manifest is caught like a changed snapshot.
        "ALTER TABLE snapshots ADD COLUMN manifest_sha256 TEXT;",
        // 4: why a deletion could not finish (a WORM bucket, a target that is gone), so
        // status can say so while later runs retry it.
        """
        ALTER TABLE snapshots ADD COLUMN delete_error TEXT;
        ALTER TABLE snapshots ADD COLUMN delete_failed_at REAL;
        ALTER TABLE snapshots ADD COLUMN delete_failures INTEGER NOT NULL DEFAULT 0;
        """,
        // 5: operator-ready monitoring. Which process a run belongs to (pid and its start time,
        // so a reused pid is not taken for it), so status can tell a run in progress from one
        // a crash left 'running'; a drill's slowest recovery, for its RTO margin; and each
        // target's last access by a run (could it be opened and listed?), for bosbackup_target_up.
        """
        ALTER TABLE runs ADD COLUMN pid INTEGER;
        ALTER TABLE runs ADD COLUMN process_start INTEGER;
        ALTER TABLE drills ADD COLUMN recovery_seconds REAL;
        CREATE TABLE target_access (
            target      TEXT PRIMARY KEY,
            accessed_at REAL NOT NULL,
            ok          INTEGER NOT NULL,
            error       TEXT
        );
        """,
        // 6: repository v2 — which layout a snapshot's objects use (1: v1's `<job>/…`, 2: the
        // `<host>/<database>/snapshots/…` namespace), full or incremental, the parent an
        // incremental's pages are relative to and the full its chain starts from, and its page map.
        """
        ALTER TABLE snapshots ADD COLUMN format INTEGER NOT NULL DEFAULT 1;
        ALTER TABLE snapshots ADD COLUMN kind TEXT NOT NULL DEFAULT 'full' CHECK (kind IN ('full', 'incremental'));
        ALTER TABLE snapshots ADD COLUMN parent_id TEXT;
        ALTER TABLE snapshots ADD COLUMN chain_root TEXT;
        ALTER TABLE snapshots ADD COLUMN host TEXT;
        ALTER TABLE snapshots ADD COLUMN database_name TEXT;
        ALTER TABLE snapshots ADD COLUMN pagemap_key TEXT;
        CREATE INDEX snapshots_parent ON snapshots(parent_id);
        """,
        // 7: continuous WAL archiving. A generation is one unbroken run of archived commits
        // on top of a base snapshot; each segment holds whole commits, with the WAL position
        // after its last frame (where the next segment to that target resumes). wal_progress:
        // when a target last had everything the WAL held (an idle database ships nothing, but
        // the archive still covers the time up to then).
        """
        CREATE TABLE wal_generations (
            id            TEXT PRIMARY KEY,
            database_name TEXT NOT NULL,
            host          TEXT NOT NULL,
            base_snapshot TEXT NOT NULL,
            salt1         INTEGER NOT NULL,
            salt2         INTEGER NOT NULL,
            base_frame    INTEGER NOT NULL,
            started_at    REAL NOT NULL,
            ended_at      REAL,
            end_reason    TEXT
        );
        CREATE TABLE wal_segments (
            id           INTEGER PRIMARY KEY,
            generation   TEXT NOT NULL REFERENCES wal_generations(id),
            target       TEXT NOT NULL,
            object_key   TEXT NOT NULL,
            first_txid   INTEGER NOT NULL,
            last_txid    INTEGER NOT NULL,
            first_seen   REAL NOT NULL,
            last_seen    REAL NOT NULL,
            salt1        INTEGER NOT NULL,
            salt2        INTEGER NOT NULL,
            last_frame   INTEGER NOT NULL,
            checksum_s0  INTEGER NOT NULL,
            checksum_s1  INTEGER NOT NULL,
            page_count   INTEGER NOT NULL,
            bytes        INTEGER NOT NULL,
            sha256       TEXT NOT NULL,
            shipped_at   REAL NOT NULL
        );
        CREATE INDEX wal_segments_generation ON wal_segments(generation, target, first_txid);
        CREATE TABLE wal_progress (
            generation TEXT NOT NULL REFERENCES wal_generations(id),
            target     TEXT NOT NULL,
            checked_at REAL NOT NULL,
            PRIMARY KEY (generation, target)
        ) WITHOUT ROWID;
        """,
        // 8: each archive target holds a base snapshot of its own, so each target's archive
        // restores alone. A target's base may pin a later WAL commit than the generation's
        // first base: it already holds txids 1…base_txid, its segments start after them.
        // A generation without rows here (schema 7) has its one base, on its first target.
        """
        CREATE TABLE wal_bases (
            generation  TEXT NOT NULL REFERENCES wal_generations(id),
            target      TEXT NOT NULL,
            snapshot_id TEXT NOT NULL,
            base_txid   INTEGER NOT NULL,
            salt1       INTEGER NOT NULL,
            salt2       INTEGER NOT NULL,
            frame       INTEGER NOT NULL,
            PRIMARY KEY (generation, target)
        ) WITHOUT ROWID;
        """,
        // 9: the archive's own checksums. When a generation continues into a new one, the new
        // one's base snapshots pin commits of the old: the state right after txid N of the old
        // generation is byte for byte the image of that snapshot (whose SHA-256 the catalog has).
        // `verify --chain --restore` rebuilds it from the archive and compares.
        """
        CREATE TABLE wal_checks (
            generation  TEXT NOT NULL REFERENCES wal_generations(id),
            txid        INTEGER NOT NULL,
            snapshot_id TEXT NOT NULL,
            PRIMARY KEY (generation, txid, snapshot_id)
        ) WITHOUT ROWID;
        """,
        // 10: the audit trail becomes a hash chain (docs/DESIGN.md "The audit trail"): each row
        // carries the SHA-256 of the one before and its own; `audit_trail` names the chain
        // (its first row's predecessor is a hash of that name); `audit_seals` lists the signed
        // seals of the chain's head stored on the targets. Rows from before are chained by
        // `AuditChain.chainUnchained` right after this migration.
        """
        ALTER TABLE audit ADD COLUMN prev_sha256 TEXT;
        ALTER TABLE audit ADD COLUMN sha256 TEXT;
        CREATE TABLE audit_trail (
            id          TEXT NOT NULL,
            created_at  REAL NOT NULL
        );
        INSERT INTO audit_trail (id, created_at) VALUES (lower(hex(randomblob(16))), CAST(strftime('%s','now') AS REAL));
        CREATE TABLE audit_seals (
            id          INTEGER PRIMARY KEY,
            row_id      INTEGER NOT NULL,
            row_sha256  TEXT NOT NULL,
            sealed_at   REAL NOT NULL,
            object_key  TEXT NOT NULL,
            targets     TEXT NOT NULL
        );
        """,
        // 11: a BOSWAL03 segment's index (docs/DESIGN.md "WAL segments"): where it lies in the
        // object and the SHA-256 of its bytes; NULL for the older formats, read whole.
        """
        ALTER TABLE wal_segments ADD COLUMN index_offset INTEGER;
        ALTER TABLE wal_segments ADD COLUMN index_length INTEGER;
        ALTER TABLE wal_segments ADD COLUMN index_sha256 TEXT;
        """,
    ]

    static var currentVersion: Int { migrations.count }
}
