//! The lock-risk findings: what each rule says, naming the objects, and the safe SQL to use
//! instead. Messages are written for the DBA reading a CI log.

use super::RuleHit;

fn hit(rule: &'static str, message: String, help: String) -> RuleHit {
    RuleHit {
        rule,
        message,
        help,
    }
}

/// CREATE INDEX without CONCURRENTLY on an existing table.
pub(crate) fn create_index_not_concurrent(index: &str, table: &str, unique: bool) -> RuleHit {
    let unique = if unique { "UNIQUE " } else { "" };
    hit(
        "index-not-concurrent",
        format!(
            "CREATE {unique}INDEX {index} ON {table} without CONCURRENTLY holds a SHARE lock on {table}: every INSERT, UPDATE and DELETE waits for the whole index build"
        ),
        format!(
            "CREATE {unique}INDEX CONCURRENTLY {index} ON {table} (…); concertina runs it outside a transaction (keep it out of BEGIN…COMMIT); if the build fails, DROP INDEX CONCURRENTLY {index} and retry"
        ),
    )
}

/// DROP INDEX without CONCURRENTLY.
pub(crate) fn drop_index_not_concurrent(index: &str) -> RuleHit {
    hit(
        "index-not-concurrent",
        format!(
            "DROP INDEX {index} without CONCURRENTLY takes ACCESS EXCLUSIVE on its table: every read and write of the table waits, and queues behind any long query"
        ),
        format!(
            "DROP INDEX CONCURRENTLY IF EXISTS {index}; (one index per statement, outside BEGIN…COMMIT)"
        ),
    )
}

/// REINDEX without CONCURRENTLY.
pub(crate) fn reindex_not_concurrent(what: &str, target: &str) -> RuleHit {
    hit(
        "index-not-concurrent",
        format!(
            "REINDEX {what} {target} without CONCURRENTLY blocks writes to the table and every query that would use the rebuilt index until the rebuild ends"
        ),
        format!("REINDEX (CONCURRENTLY) {what} {target}; outside BEGIN…COMMIT (PostgreSQL 12+)"),
    )
}

/// ADD CONSTRAINT FOREIGN KEY/CHECK without NOT VALID on an existing table.
pub(crate) fn constraint_not_valid(table: &str, name: &str, kind: &str) -> RuleHit {
    let (lock, scan) = if kind == "FOREIGN KEY" {
        (
            format!("SHARE ROW EXCLUSIVE on {table} and on the referenced table"),
            "checks every existing row against the referenced table",
        )
    } else {
        (
            format!("ACCESS EXCLUSIVE on {table}"),
            "checks every existing row",
        )
    };
    let name_shown = if name.is_empty() { "<name>" } else { name };
    hit(
        "constraint-not-valid",
        format!("ADD CONSTRAINT {name_shown} {kind} on {table} {scan} while holding {lock}"),
        format!(
            "ALTER TABLE {table} ADD CONSTRAINT {name_shown} {kind} (…) NOT VALID; then ALTER TABLE {table} VALIDATE CONSTRAINT {name_shown}; (validation takes only SHARE UPDATE EXCLUSIVE; reads and writes continue)"
        ),
    )
}

/// ADD UNIQUE / PRIMARY KEY without USING INDEX on an existing table.
pub(crate) fn unique_without_index(
    table: &str,
    name: &str,
    kind: &str,
    columns: &[String],
) -> RuleHit {
    let name_shown = if name.is_empty() {
        format!("{}_{}_idx", table.replace('.', "_"), columns.join("_"))
    } else {
        name.to_string()
    };
    let cols = if columns.is_empty() {
        "…".to_string()
    } else {
        columns.join(", ")
    };
    hit(
        "unique-without-index",
        format!(
            "ADD {kind} on {table} ({cols}) builds its unique index while holding ACCESS EXCLUSIVE on {table}: no reads or writes until the build ends"
        ),
        format!(
            "CREATE UNIQUE INDEX CONCURRENTLY {name_shown} ON {table} ({cols}); then ALTER TABLE {table} ADD CONSTRAINT {name_shown} {kind} USING INDEX {name_shown};"
        ),
    )
}

/// ADD COLUMN whose default is evaluated per row (volatile function, identity, serial,
/// generated stored).
pub(crate) fn volatile_default(table: &str, column: &str, why: &str, generated: bool) -> RuleHit {
    let help = if generated {
        format!(
            "add {column} as a plain nullable column, keep it up to date with a trigger (or in the app), fill existing rows in a .backfill.sql migration, then add NOT NULL via a validated CHECK"
        )
    } else {
        format!(
            "ALTER TABLE {table} ADD COLUMN {column} <type>; ALTER TABLE {table} ALTER COLUMN {column} SET DEFAULT <expression>; (new rows only, no rewrite) then fill existing rows in a .backfill.sql migration"
        )
    };
    hit(
        "volatile-default",
        format!(
            "ADD COLUMN {table}.{column}: {why}, so PostgreSQL rewrites every row of {table} under ACCESS EXCLUSIVE"
        ),
        help,
    )
}

/// ALTER COLUMN TYPE on an existing table.
pub(crate) fn type_change_rewrite(table: &str, column: &str, new_type: &str, why: &str) -> RuleHit {
    hit(
        "type-change-rewrite",
        format!(
            "ALTER COLUMN {table}.{column} TYPE {new_type} {why}: PostgreSQL rewrites {table} and rebuilds its indexes under ACCESS EXCLUSIVE"
        ),
        format!(
            "add a new column of type {new_type}, keep it in sync (trigger or app), fill it in a .backfill.sql migration, switch the app, then drop {column} in a contract migration; if the change is binary-compatible (varchar(n)→varchar(m>n), varchar→text, numeric(p,s)→numeric(p2>p,s)), allow this rule with that reason"
        ),
    )
}

/// SET NOT NULL without a validated CHECK first.
pub(crate) fn set_not_null_scan(table: &str, column: &str) -> RuleHit {
    let check = format!(
        "{}_{}_not_null",
        table.rsplit('.').next().unwrap_or(table),
        column
    );
    hit(
        "set-not-null-scan",
        format!(
            "SET NOT NULL on {table}.{column} scans the whole table for NULLs while holding ACCESS EXCLUSIVE on {table}"
        ),
        format!(
            "ALTER TABLE {table} ADD CONSTRAINT {check} CHECK ({column} IS NOT NULL) NOT VALID; ALTER TABLE {table} VALIDATE CONSTRAINT {check}; then ALTER TABLE {table} ALTER COLUMN {column} SET NOT NULL; (PostgreSQL 12+ skips the scan) and ALTER TABLE {table} DROP CONSTRAINT {check};"
        ),
    )
}

/// VACUUM FULL, CLUSTER, LOCK TABLE.
pub(crate) fn blocking_maintenance(what: &str, target: &str) -> RuleHit {
    match what {
        "LOCK" => hit(
            "blocking-maintenance",
            format!("LOCK TABLE {target} holds a lock that blocks the app's writes (or reads) until the migration commits, and queues every query behind it while waiting"),
            "drop the explicit LOCK: concertina runs each DDL statement with lock_timeout and retries; if a lock is truly needed, take the weakest mode and keep the transaction short".to_string(),
        ),
        "CLUSTER" => hit(
            "blocking-maintenance",
            format!("CLUSTER {target} rewrites the table under ACCESS EXCLUSIVE: no reads or writes until it ends"),
            "run it in a maintenance window, or reorder online with pg_repack (--order-by) instead of a migration".to_string(),
        ),
        _ => hit(
            "blocking-maintenance",
            format!("VACUUM FULL {target} rewrites the table under ACCESS EXCLUSIVE: no reads or writes until it ends"),
            "use plain VACUUM (no lock on reads or writes), or compact online with pg_repack / pg_squeeze; keep VACUUM FULL for a maintenance window".to_string(),
        ),
    }
}

/// A statement that cannot run in a transaction block, inside BEGIN…COMMIT.
pub(crate) fn concurrently_in_transaction(kind: &str, begin_line: u32) -> RuleHit {
    hit(
        "concurrently-in-transaction",
        format!("{kind} cannot run inside a transaction block, but the BEGIN on line {begin_line} opened one: PostgreSQL will reject it"),
        "remove the BEGIN/COMMIT around it: concertina runs a file with such statements statement by statement; or move it to a migration file of its own".to_string(),
    )
}

/// A statement the schema model proves PostgreSQL will refuse.
pub(crate) fn fails_at_runtime(message: String, help: String) -> RuleHit {
    hit("fails-at-runtime", message, help)
}

/// A list of names for a message: `a, b and c`.
pub(crate) fn list(names: &[String]) -> String {
    match names {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// Names with their noun in the right number: `index a`, `indexes a and b`.
pub(crate) fn counted(one: &str, many: &str, names: &[String]) -> String {
    let noun = if names.len() == 1 { one } else { many };
    format!("{noun} {}", list(names))
}
