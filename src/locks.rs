//! What a statement's table locks are and what they block: PostgreSQL's lock modes, the
//! app traffic each one stops, and the slow work a statement does while holding them. The
//! classifier fills them in (`classify::locks`); the lint rule `lock-held-in-transaction`
//! reasons about them. Pure data, apart from both so that neither imports the other.

/// A table lock mode, weakest first (PostgreSQL's numbering: `LOCK TABLE`'s modes 1–8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LockMode {
    /// `SELECT`.
    AccessShare,
    /// `SELECT … FOR UPDATE`.
    RowShare,
    /// `INSERT`, `UPDATE`, `DELETE`.
    RowExclusive,
    /// `VALIDATE CONSTRAINT`, `CREATE INDEX CONCURRENTLY`, `ATTACH PARTITION` (parent).
    ShareUpdateExclusive,
    /// `CREATE INDEX`.
    Share,
    /// `CREATE TRIGGER`, `ADD FOREIGN KEY`.
    ShareRowExclusive,
    /// `REFRESH MATERIALIZED VIEW CONCURRENTLY`.
    Exclusive,
    /// Most `ALTER TABLE` forms, `DROP`, `TRUNCATE`, `VACUUM FULL`, `CLUSTER`.
    AccessExclusive,
}

/// What a held lock stops the app from doing, weakest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Blocks {
    /// Only DDL and maintenance wait.
    Nothing,
    /// `INSERT`, `UPDATE` and `DELETE` wait; reads go on.
    Writes,
    /// Even `SELECT` waits.
    Reads,
}

impl LockMode {
    /// The mode of `LOCK TABLE`'s numbering (1 = ACCESS SHARE … 8 = ACCESS EXCLUSIVE).
    pub(crate) fn from_number(mode: i32) -> LockMode {
        match mode {
            i32::MIN..=1 => LockMode::AccessShare,
            2 => LockMode::RowShare,
            3 => LockMode::RowExclusive,
            4 => LockMode::ShareUpdateExclusive,
            5 => LockMode::Share,
            6 => LockMode::ShareRowExclusive,
            7 => LockMode::Exclusive,
            _ => LockMode::AccessExclusive,
        }
    }

    /// Its name in `pg_locks.mode` (`AccessExclusiveLock`).
    pub fn pg_locks_name(self) -> &'static str {
        match self {
            LockMode::AccessShare => "AccessShareLock",
            LockMode::RowShare => "RowShareLock",
            LockMode::RowExclusive => "RowExclusiveLock",
            LockMode::ShareUpdateExclusive => "ShareUpdateExclusiveLock",
            LockMode::Share => "ShareLock",
            LockMode::ShareRowExclusive => "ShareRowExclusiveLock",
            LockMode::Exclusive => "ExclusiveLock",
            LockMode::AccessExclusive => "AccessExclusiveLock",
        }
    }

    /// Its name as the documentation writes it (`ACCESS EXCLUSIVE`).
    pub fn sql_name(self) -> &'static str {
        match self {
            LockMode::AccessShare => "ACCESS SHARE",
            LockMode::RowShare => "ROW SHARE",
            LockMode::RowExclusive => "ROW EXCLUSIVE",
            LockMode::ShareUpdateExclusive => "SHARE UPDATE EXCLUSIVE",
            LockMode::Share => "SHARE",
            LockMode::ShareRowExclusive => "SHARE ROW EXCLUSIVE",
            LockMode::Exclusive => "EXCLUSIVE",
            LockMode::AccessExclusive => "ACCESS EXCLUSIVE",
        }
    }

    /// What the app cannot do while the lock is held: ROW EXCLUSIVE (every write) conflicts
    /// with SHARE and up, ACCESS SHARE (every read) only with ACCESS EXCLUSIVE.
    pub fn blocks(self) -> Blocks {
        match self {
            LockMode::AccessExclusive => Blocks::Reads,
            LockMode::Share | LockMode::ShareRowExclusive | LockMode::Exclusive => Blocks::Writes,
            _ => Blocks::Nothing,
        }
    }
}

/// A lock a statement takes on a table that existed before the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableLock {
    /// The table's key (`users`, `billing.invoices`).
    pub table: String,
    /// The table as written.
    pub shown: String,
    /// The strongest mode the statement takes on it.
    pub mode: LockMode,
}

/// Work a statement does in proportion to the size of a table that existed before the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlowStep {
    /// The table's key.
    pub table: String,
    /// What it does, as a phrase that follows the statement's kind (`scans every row of
    /// users to validate the constraint`).
    pub work: String,
}
