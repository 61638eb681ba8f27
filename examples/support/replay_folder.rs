//! The folders of the replay benchmark and of its scaling test: mostly `CREATE TABLE` with
//! serial keys and unnamed constraints, plus `CREATE INDEX`, `ALTER TABLE`, drops and
//! renames of what earlier files made.

/// Statements a file holds in the many-file layout.
pub const PER_FILE: usize = 10;

/// Statement `i` of the folder. Six of ten create a table; the others index a table made
/// in the group before, add a column to it, change a column's default (which makes the
/// classifier look at the schema as the earlier statements of its file left it), and drop
/// or rename something of the group before in turn: a column with a constraint, a column
/// in a UNIQUE key, a table, a table with its dependents.
fn statement(i: usize) -> String {
    let group = i / PER_FILE;
    // The group before (the first group uses its own tables).
    let before = group.saturating_sub(1);
    let earlier = format!("t_{before}_0");
    match i % PER_FILE {
        n @ 0..=5 => {
            let t = format!("t_{group}_{n}");
            format!(
                "CREATE TABLE {t} (\n    id bigserial PRIMARY KEY,\n    code text UNIQUE,\n    name varchar(40) NOT NULL,\n    owner_id bigint,\n    amount numeric(10,2) CHECK (amount >= 0),\n    created_at timestamptz NOT NULL DEFAULT now()\n);\n"
            )
        }
        6 => format!("CREATE INDEX ON {earlier} (owner_id);\n"),
        7 => format!("ALTER TABLE {earlier} ADD COLUMN note_{group} text;\n"),
        8 => format!("ALTER TABLE {earlier} ALTER COLUMN name SET DEFAULT '';\n"),
        _ => match group % 4 {
            0 => format!("ALTER TABLE {earlier} DROP COLUMN amount;\n"),
            1 => format!("ALTER TABLE {earlier} RENAME COLUMN code TO code_{group};\n"),
            2 => format!("ALTER TABLE t_{before}_4 RENAME TO renamed_{group};\n"),
            _ => format!("DROP TABLE t_{before}_5 CASCADE;\n"),
        },
    }
}

/// Writes a folder of `statements` statements, `per_file` to a file.
pub fn folder(statements: usize, per_file: usize) -> std::io::Result<tempfile::TempDir> {
    let dir = tempfile::tempdir()?;
    let mut body = String::new();
    for i in 0..statements {
        body.push_str(&statement(i));
        if (i + 1) % per_file == 0 || i + 1 == statements {
            let file = i / per_file + 1;
            std::fs::write(dir.path().join(format!("{file:06}_step.sql")), &body)?;
            body.clear();
        }
    }
    Ok(dir)
}
