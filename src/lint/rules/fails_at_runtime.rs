//! `fails-at-runtime`: a statement that the schema model (the replayed history or the live
//! catalog) proves PostgreSQL will refuse. Found by the classifier where it knows the
//! schema: enum values (`classify::objects`), drops with dependents (`classify::drops`),
//! and column sub-commands (`classify::table::columns`).

use crate::lint::{Rule, RuleHit, Severity};

pub const RULE: Rule = Rule {
    id: "fails-at-runtime",
    severity: Severity::Error,
    summary: "the schema model proves PostgreSQL will refuse the statement (an enum value that exists or does not, or is used in the transaction that adds it; a drop or type change that views, FOREIGN KEYs or columns depend on; ADD COLUMN … NOT NULL without a default on a table that holds rows; CREATE INDEX CONCURRENTLY on a partitioned table)",
};

/// ADD VALUE (statement `kind`) of `value`, which enum `shown` already has, without IF NOT
/// EXISTS.
pub(crate) fn enum_value_exists(kind: &str, shown: &str, value: &str) -> RuleHit {
    RULE.hit(
        format!("{kind} fails: enum {shown} already has the value '{value}'"),
        format!("write ADD VALUE IF NOT EXISTS '{value}' or remove the statement"),
    )
}

/// ADD VALUE … BEFORE/AFTER `neighbor`, which enum `shown` lacks (its values `listed`).
pub(crate) fn enum_neighbor_missing(
    kind: &str,
    shown: &str,
    neighbor: &str,
    listed: &str,
) -> RuleHit {
    RULE.hit(
        format!(
            "{kind} fails: enum {shown} has no value '{neighbor}' to place it next to (its values: {listed})"
        ),
        "name an existing value in BEFORE/AFTER, or drop the clause to add the value at the end",
    )
}

/// RENAME VALUE refused for `problem` (a value the enum lacks, or one it already has).
pub(crate) fn enum_rename_refused(kind: &str, problem: &str, listed: &str) -> RuleHit {
    RULE.hit(
        format!("{kind} fails: {problem} (its values: {listed})"),
        "rename a value the enum has, to a name it does not have yet",
    )
}

/// A DROP (statement `kind`) without CASCADE of an object that `facts` depend on.
pub(crate) fn drop_has_dependents(kind: &str, facts: &str) -> RuleHit {
    RULE.hit(
        format!("{kind} fails: {facts}, and PostgreSQL refuses to drop it without CASCADE"),
        "drop or change the dependents first in this migration (e.g. DROP VIEW … before the table, ALTER COLUMN … TYPE before the type), or add CASCADE if dropping them is intended",
    )
}

/// DROP COLUMN `table`.`column` without CASCADE while FOREIGN KEY `referencing` (a list)
/// references it.
pub(crate) fn drop_column_referenced(table: &str, column: &str, referencing: &str) -> RuleHit {
    RULE.hit(
        format!(
            "DROP COLUMN {table}.{column} fails: FOREIGN KEY {referencing} references the column, and PostgreSQL refuses to drop it without CASCADE"
        ),
        format!(
            "drop the referencing FOREIGN KEY first (ALTER TABLE … DROP CONSTRAINT …), or write DROP COLUMN {column} CASCADE if dropping it is intended"
        ),
    )
}

/// A column sub-command names `column`, which the fully known `table` lacks (`listed`: its
/// columns with their types).
pub(crate) fn missing_column(table: &str, column: &str, listed: &str) -> RuleHit {
    RULE.hit(
        format!("{table} has no column {column} ({listed}): PostgreSQL refuses this statement"),
        format!(
            "check the column name; if {column} is made outside the migrations folder, judge against the live schema (--database-url) or allow fails-at-runtime with the reason"
        ),
    )
}

/// CREATE INDEX CONCURRENTLY `index` on partitioned table `table`.
pub(crate) fn concurrent_index_on_partitioned(index: &str, table: &str) -> RuleHit {
    RULE.hit(
        format!(
            "CREATE INDEX CONCURRENTLY {index} fails: {table} is partitioned, and PostgreSQL cannot build an index on a partitioned table concurrently"
        ),
        format!(
            "CREATE INDEX {index} ON ONLY {table} (…); then for each partition: CREATE INDEX CONCURRENTLY <partition>_idx ON <partition> (…); ALTER INDEX {index} ATTACH PARTITION <partition>_idx;"
        ),
    )
}

/// ADD COLUMN `table`.`column` NOT NULL without a default, on a table that existed before
/// this release (so it may hold rows: every one of them would get NULL).
pub(crate) fn not_null_without_default(table: &str, column: &str) -> RuleHit {
    RULE.hit(
        format!(
            "ADD COLUMN {table}.{column} NOT NULL without a default fails as soon as {table} holds a row: every existing row would get NULL"
        ),
        format!(
            "add {column} nullable (or with a constant DEFAULT), fill it in a .backfill.sql migration, then make it NOT NULL through a validated CHECK ({column} IS NOT NULL) in a contract; if {table} is always empty here, allow fails-at-runtime with that reason"
        ),
    )
}

/// A statement of the transaction that ran `ALTER TYPE enum ADD VALUE 'value'` uses the
/// new value (statement `kind`).
pub(crate) fn enum_value_used_before_commit(kind: &str, enum_shown: &str, value: &str) -> RuleHit {
    RULE.hit(
        format!(
            "{kind} fails: it uses '{value}', which ALTER TYPE {enum_shown} ADD VALUE adds earlier in the same transaction (PostgreSQL: unsafe use of new value; it must be committed first)"
        ),
        format!(
            "move ALTER TYPE {enum_shown} ADD VALUE '{value}' into an earlier migration file (each file is its own transaction)"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::RULE;
    use crate::lint::RuleHit;
    use crate::lint::rules::testing::hits_after;

    fn fired(history: &str, sql: &str) -> Vec<RuleHit> {
        hits_after(history, sql)
            .into_iter()
            .filter(|h| h.rule == RULE.id)
            .collect()
    }

    #[test]
    fn enum_values_the_model_knows() {
        let history = "CREATE TYPE mood AS ENUM ('sad', 'ok');";
        let h = fired(history, "ALTER TYPE mood ADD VALUE 'ok'");
        assert_eq!(h.len(), 1, "{h:?}");
        assert!(h[0].help.contains("IF NOT EXISTS 'ok'"), "{}", h[0].help);
        assert!(fired(history, "ALTER TYPE mood ADD VALUE IF NOT EXISTS 'ok'").is_empty());
        assert_eq!(
            fired(history, "ALTER TYPE mood ADD VALUE 'happy' AFTER 'glad'").len(),
            1
        );
        assert!(fired(history, "ALTER TYPE mood ADD VALUE 'happy' AFTER 'ok'").is_empty());
        assert_eq!(
            fired(history, "ALTER TYPE mood RENAME VALUE 'meh' TO 'fine'").len(),
            1
        );
        assert!(fired(history, "ALTER TYPE mood RENAME VALUE 'ok' TO 'fine'").is_empty());
    }

    #[test]
    fn drops_that_dependents_refuse() {
        let history = "CREATE TABLE users (id int PRIMARY KEY, name text);
                       CREATE VIEW names AS SELECT name FROM users;";
        let h = fired(history, "DROP TABLE users");
        assert_eq!(h.len(), 1, "{h:?}");
        assert!(
            h[0].message.contains("view names reads users"),
            "{}",
            h[0].message
        );
        assert!(fired(history, "DROP TABLE users CASCADE").is_empty());
        assert!(fired(history, "DROP VIEW names; DROP TABLE users").is_empty());

        let history = "CREATE TABLE users (id int PRIMARY KEY);
                       CREATE TABLE orders (id int, user_id int REFERENCES users (id));";
        let h = fired(history, "ALTER TABLE users DROP COLUMN id");
        assert_eq!(h.len(), 1, "{h:?}");
        assert!(
            h[0].help.contains("DROP COLUMN id CASCADE"),
            "{}",
            h[0].help
        );
        assert!(fired(history, "ALTER TABLE users DROP COLUMN id CASCADE").is_empty());
    }

    #[test]
    fn a_foreign_key_without_a_column_list_references_the_primary_key_only() {
        let history = "CREATE TABLE users (id int PRIMARY KEY, legacy text);
                       CREATE TABLE orders (id int, user_id int REFERENCES users);";
        assert!(fired(history, "ALTER TABLE users DROP COLUMN legacy").is_empty());
        assert_eq!(
            fired(history, "ALTER TABLE users DROP COLUMN id").len(),
            1,
            "the primary key it references"
        );
        // A DO block hides the referenced table: which column the key uses is unknown, so
        // nothing is claimed.
        let hidden =
            "DO $$ BEGIN EXECUTE 'CREATE TABLE users (id int PRIMARY KEY, legacy text)'; END $$;
                      CREATE TABLE orders (id int, user_id int REFERENCES users);";
        assert!(fired(hidden, "ALTER TABLE users DROP COLUMN legacy").is_empty());
        assert!(fired(hidden, "ALTER TABLE users DROP COLUMN id").is_empty());
    }

    #[test]
    fn a_column_the_known_table_lacks() {
        let history = "CREATE TABLE users (id int, email text);";
        let h = fired(history, "ALTER TABLE users ALTER COLUMN emial SET NOT NULL");
        assert_eq!(h.len(), 1, "{h:?}");
        assert!(
            h[0].message
                .contains("users has no column emial (its columns: email text, id int4)"),
            "{}",
            h[0].message
        );
        assert!(fired(history, "ALTER TABLE users ALTER COLUMN email SET NOT NULL").is_empty());
    }
}
