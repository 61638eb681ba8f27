//! The other tools' history tables, on the database: where they are on the search_path,
//! whether they have the tool's shape, and what their rows say was applied.

use super::*;

/// Double-quotes an identifier for SQL text.
fn quote(identifier: &str) -> String {
    format!("\"{}\"", identifier.replace('"', "\"\""))
}

/// A table found on the search_path: its schema and whether it is there.
#[derive(Debug, Clone)]
pub(super) struct Located {
    schema: String,
    name: &'static str,
    columns: BTreeSet<String>,
}

impl Located {
    pub(super) fn qualified(&self) -> String {
        format!("{}.{}", self.schema, self.name)
    }

    fn sql_name(&self) -> String {
        format!("{}.{}", quote(&self.schema), quote(self.name))
    }
}

pub(super) fn database(error: sqlx::Error) -> RunnerError {
    RunnerError::database(crate::db::describe(&error))
}

/// The connection's search_path, for messages.
async fn search_path(conn: &mut PgConnection) -> Result<String, RunnerError> {
    sqlx::query_scalar::<_, String>("SELECT current_setting('search_path')")
        .fetch_one(conn)
        .await
        .map_err(database)
}

/// Table `name` in the first schema of the search_path that has it (never concertina's own
/// schema, whose `_sqlx_migrations` is concertina's state), with its columns.
async fn locate(
    conn: &mut PgConnection,
    name: &'static str,
) -> Result<Option<Located>, RunnerError> {
    let schema: Option<String> = sqlx::query_scalar(
        "SELECT s.name::text FROM unnest(current_schemas(false)) WITH ORDINALITY AS s(name, pos) \
         JOIN pg_namespace n ON n.nspname = s.name \
         JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = $1 AND c.relkind IN ('r', 'p', 'v') \
         WHERE n.nspname <> 'concertina' ORDER BY s.pos LIMIT 1",
    )
    .bind(name)
    .fetch_optional(&mut *conn)
    .await
    .map_err(database)?;
    let Some(schema) = schema else {
        return Ok(None);
    };
    let columns: Vec<String> = sqlx::query_scalar(
        "SELECT column_name::text FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2",
    )
    .bind(&schema)
    .bind(name)
    .fetch_all(&mut *conn)
    .await
    .map_err(database)?;
    Ok(Some(Located {
        schema,
        name,
        columns: columns.into_iter().collect(),
    }))
}

/// The tools whose history tables are on the search_path. `schema_migrations` is
/// golang-migrate's when it has a `dirty` column, dbmate's otherwise.
async fn detect(conn: &mut PgConnection) -> Result<Vec<(Tool, Located)>, RunnerError> {
    let mut found = Vec::new();
    for tool in Tool::ALL {
        if tool == Tool::Dbmate {
            continue; // decided with golang-migrate, from the same table
        }
        let Some(table) = locate(conn, tool.table()).await? else {
            continue;
        };
        let tool = match tool {
            Tool::GolangMigrate if !table.columns.contains("dirty") => Tool::Dbmate,
            other => other,
        };
        found.push((tool, table));
    }
    Ok(found)
}

/// The rows of `tool`'s table that stand for applied migrations (a Flyway table with only
/// its schema-creation row, an emptied golang-migrate table: none).
async fn applied_rows(
    conn: &mut PgConnection,
    tool: Tool,
    table: &Located,
) -> Result<i64, RunnerError> {
    let filter = match tool {
        Tool::Flyway => " WHERE type <> 'SCHEMA'",
        _ => "",
    };
    let sql = format!("SELECT count(*) FROM {}{filter}", table.sql_name());
    sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql))
        .fetch_one(conn)
        .await
        .map_err(database)
}

/// The other tools' history tables on `conn`'s search_path that record applied
/// migrations. `pre-deploy` and `post-deploy` refuse to run on a database concertina has
/// recorded nothing in while this is not empty: the files would run a second time.
pub async fn foreign_history(conn: &mut PgConnection) -> Result<Vec<ForeignTable>, RunnerError> {
    let mut out = Vec::new();
    for (tool, table) in detect(conn).await? {
        // A table whose rows cannot be counted (not the tool's shape) is counted as
        // history: fail closed, `import` then says what is wrong with it.
        let rows = applied_rows(conn, tool, &table).await.unwrap_or(1);
        if rows > 0 {
            out.push(ForeignTable {
                tool,
                table: table.qualified(),
                rows,
            });
        }
    }
    Ok(out)
}

/// The table to import from: `from`'s, or the only one there is.
pub(super) async fn choose(
    conn: &mut PgConnection,
    from: Option<Tool>,
) -> Result<(Tool, Located), ImportError> {
    let found = detect(conn).await?;
    let list = |found: &[(Tool, Located)]| {
        found
            .iter()
            .map(|(tool, table)| format!("{tool} (`{}`)", table.qualified()))
            .collect::<Vec<_>>()
            .join(", ")
    };
    match from {
        None => match found.as_slice() {
            [] => Err(ImportError::NoHistory {
                looked_for: Tool::ALL
                    .iter()
                    .map(|t| format!("`{}` ({t})", t.table()))
                    .collect::<Vec<_>>()
                    .join(", "),
                search_path: search_path(conn).await?,
            }),
            [_] => Ok(found.into_iter().next().ok_or_else(|| {
                RunnerError::Database("the history table vanished while it was read".into())
            })?),
            [(first, _), ..] => Err(ImportError::Ambiguous {
                found: list(&found),
                first: *first,
            }),
        },
        Some(tool) => {
            if let Some(at) = found.iter().position(|(t, _)| *t == tool) {
                return Ok(found.into_iter().nth(at).ok_or_else(|| {
                    RunnerError::Database("the history table vanished while it was read".into())
                })?);
            }
            // golang-migrate and dbmate share a table name: say which one it looks like.
            if let Some(table) = locate(conn, tool.table()).await? {
                let other = found
                    .iter()
                    .find(|(_, t)| t.name == table.name)
                    .map(|(t, _)| *t);
                return Err(shape_error(tool, &table, other));
            }
            Err(ImportError::NotFound {
                tool,
                table: tool.table(),
                search_path: search_path(conn).await?,
                others: if found.is_empty() {
                    String::new()
                } else {
                    format!(
                        "; the database has {}: use `--from {}` or leave `--from` out",
                        list(&found),
                        found[0].0
                    )
                },
            })
        }
    }
}

fn shape_error(tool: Tool, table: &Located, looks_like: Option<Tool>) -> ImportError {
    let mut missing: Vec<&str> = tool
        .columns()
        .iter()
        .copied()
        .filter(|c| !table.columns.contains(*c))
        .collect();
    if tool == Tool::Dbmate && table.columns.contains("dirty") {
        // dbmate's table has no `dirty`: this one is golang-migrate's.
        missing.clear();
    }
    let hint = match looks_like {
        Some(other) if other != tool => {
            format!("; it looks like {other}'s: `concertina import --from {other}`")
        }
        _ => String::new(),
    };
    ImportError::Shape {
        tool,
        table: table.qualified(),
        plural: if missing.len() == 1 { "" } else { "s" },
        missing: if missing.is_empty() {
            "none, but it has `dirty`".into()
        } else {
            missing.join(", ")
        },
        has: table.columns.iter().cloned().collect::<Vec<_>>().join(", "),
        hint,
    }
}

/// A version as the tool stored it, as a concertina version (digits only).
pub(super) fn parse_version(tool: Tool, text: &str, at: &str) -> Result<u64, String> {
    let digits = if tool == Tool::Diesel {
        text.replace('-', "")
    } else {
        text.trim().to_string()
    };
    if !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && let Ok(version) = digits.parse::<u64>()
        && version <= i64::MAX as u64
    {
        return Ok(version);
    }
    Err(format!(
        "{at}: version `{text}` is not a whole number up to 9223372036854775807; concertina versions are bigint, so this history cannot be taken over as it is (rename the file to an integer version in both the folder and the history table, or adopt with `concertina baseline --through VERSION`)"
    ))
}

/// Reads `tool`'s table and judges its rows.
pub(super) async fn read_history(
    conn: &mut PgConnection,
    tool: Tool,
    table: &Located,
) -> Result<History, RunnerError> {
    let name = table.sql_name();
    let qualified = table.qualified();
    let mut history = History::default();
    let query = |sql: String| sqlx::query(sqlx::AssertSqlSafe(sql));
    match tool {
        Tool::Sqlx => {
            let rows = query(format!(
                "SELECT version, success, checksum, installed_on, execution_time FROM {name} ORDER BY version"
            ))
            .fetch_all(&mut *conn)
            .await
            .map_err(database)?;
            for row in rows {
                let version: i64 = row.try_get("version").map_err(database)?;
                let success: bool = row.try_get("success").map_err(database)?;
                let at = format!("{qualified} version {version}");
                let Ok(version) = u64::try_from(version) else {
                    history.refused.push(format!(
                        "{at}: a negative version cannot be a concertina version"
                    ));
                    continue;
                };
                if !success {
                    history.refused.push(format!(
                        "{at}: sqlx recorded it as failed (success = false): the database may hold part of it; finish or undo it by hand, then delete the row (`DELETE FROM {qualified} WHERE version = {version}`) or re-run `sqlx migrate run`, and import again"
                    ));
                    continue;
                }
                let nanos: i64 = row.try_get("execution_time").map_err(database)?;
                history.entries.insert(
                    version,
                    HistoryEntry {
                        version,
                        checksum: ToolChecksum::Sha384(row.try_get("checksum").map_err(database)?),
                        applied_at: Some(row.try_get("installed_on").map_err(database)?),
                        applied_by: None,
                        duration_ms: Some(nanos.max(0) / 1_000_000),
                    },
                );
            }
        }
        Tool::GolangMigrate => {
            let rows = query(format!("SELECT version, dirty FROM {name}"))
                .fetch_all(&mut *conn)
                .await
                .map_err(database)?;
            if rows.len() > 1 {
                history.refused.push(format!(
                    "{qualified}: {} rows, but golang-migrate keeps one (the latest version applied); fix the table by hand so it holds only the latest version, then import again",
                    rows.len()
                ));
            }
            for row in rows.iter().take(1) {
                let version: i64 = row.try_get("version").map_err(database)?;
                let dirty: bool = row.try_get("dirty").map_err(database)?;
                let at = format!("{qualified} version {version}");
                if dirty {
                    history.refused.push(format!(
                        "{at}: golang-migrate marked it dirty (it failed part-way): fix the database by hand, then `migrate force {version}` (or `force` the version before it if it did not apply), and import again"
                    ));
                    continue;
                }
                match u64::try_from(version) {
                    Ok(version) => {
                        history.through = Some(ThroughVersion {
                            version,
                            needs_file: true,
                            applied_at: None,
                            applied_by: None,
                        })
                    }
                    Err(_) => history.refused.push(format!(
                        "{at}: a negative version cannot be a concertina version"
                    )),
                }
            }
        }
        Tool::Dbmate | Tool::Diesel => {
            let sql = if tool == Tool::Diesel {
                format!(
                    "SELECT version::text AS version, run_on::timestamptz AS applied_at FROM {name} ORDER BY version"
                )
            } else {
                format!(
                    "SELECT version::text AS version, NULL::timestamptz AS applied_at FROM {name} ORDER BY version"
                )
            };
            let rows = query(sql).fetch_all(&mut *conn).await.map_err(database)?;
            for row in rows {
                let text: String = row.try_get("version").map_err(database)?;
                let at = format!("{qualified} version {text}");
                match parse_version(tool, &text, &at) {
                    Ok(version) => {
                        history.entries.insert(
                            version,
                            HistoryEntry {
                                version,
                                checksum: ToolChecksum::None,
                                applied_at: row.try_get("applied_at").map_err(database)?,
                                applied_by: None,
                                duration_ms: None,
                            },
                        );
                    }
                    Err(refusal) => history.refused.push(refusal),
                }
            }
        }
        Tool::Flyway => read_flyway(conn, table, &mut history).await?,
    }
    Ok(history)
}

/// Flyway's rows, in `installed_rank` order. What each `type` means here:
/// `SCHEMA` (Flyway created the schema) is skipped; `BASELINE` means every file up to its
/// version is already there; `SQL` (and the other forward types) is one applied version,
/// its CRC32 compared when the row has one; a repeatable row (version NULL) is left out
/// with a note (concertina has no repeatable migrations; their objects stay as they are);
/// `DELETE` (a `flyway repair` of a missing file) drops its version from the history, and
/// refuses when the folder still has a file for it; `UNDO_SQL` refuses unless a later row
/// applied the version again. A failed row (`success = false`) refuses.
async fn read_flyway(
    conn: &mut PgConnection,
    table: &Located,
    history: &mut History,
) -> Result<(), RunnerError> {
    let name = table.sql_name();
    let qualified = table.qualified();
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT installed_rank, version::text AS version, type::text AS type, script::text AS script, checksum, \
         installed_by::text AS installed_by, installed_on::timestamptz AS installed_on, execution_time::bigint AS execution_time, success \
         FROM {name} ORDER BY installed_rank"
    )))
    .fetch_all(&mut *conn)
    .await
    .map_err(database)?;
    // Versions undone or deleted and not applied again since (rank of that row, its type).
    let mut gone: BTreeMap<u64, (i32, String)> = BTreeMap::new();
    for row in rows {
        let rank: i32 = row.try_get("installed_rank").map_err(database)?;
        let version: Option<String> = row.try_get("version").map_err(database)?;
        let kind: String = row.try_get("type").map_err(database)?;
        let script: String = row.try_get("script").map_err(database)?;
        let success: bool = row.try_get("success").map_err(database)?;
        let at = format!("{qualified} installed_rank {rank} ({script})");
        if !success {
            history.refused.push(format!(
                "{at}: Flyway recorded it as failed (success = false): fix the database by hand, then `flyway repair` (it removes failed rows), and import again"
            ));
            continue;
        }
        if kind == "SCHEMA" {
            continue;
        }
        let Some(text) = version.filter(|v| !v.trim().is_empty()) else {
            history.notes.push(format!(
                "{at}: repeatable migration left out: concertina has no repeatable migrations; what it made stays as it is, and a later change to it belongs in a new versioned migration"
            ));
            continue;
        };
        let version = match parse_version(Tool::Flyway, &text, &at) {
            Ok(version) => version,
            Err(refusal) => {
                history.refused.push(refusal);
                continue;
            }
        };
        let applied_at: Option<DateTime<Utc>> = row.try_get("installed_on").map_err(database)?;
        let applied_by: Option<String> = row.try_get("installed_by").map_err(database)?;
        match kind.as_str() {
            "BASELINE" => {
                gone.remove(&version);
                history.through = Some(ThroughVersion {
                    version,
                    needs_file: false,
                    applied_at,
                    applied_by,
                });
            }
            "UNDO_SQL" | "UNDO_SCRIPT" | "UNDO_JDBC" | "UNDO_SPRING_JDBC" | "DELETE" => {
                history.entries.remove(&version);
                gone.insert(version, (rank, kind));
            }
            _ => {
                gone.remove(&version);
                let checksum: Option<i32> = row.try_get("checksum").map_err(database)?;
                let execution_time: i64 = row.try_get("execution_time").map_err(database)?;
                history.entries.insert(
                    version,
                    HistoryEntry {
                        version,
                        checksum: ToolChecksum::Crc32(checksum),
                        applied_at,
                        applied_by,
                        duration_ms: Some(execution_time.max(0)),
                    },
                );
            }
        }
    }
    for (version, (rank, kind)) in gone {
        if kind == "DELETE" {
            // Refused later only when the folder has a file for it (see `judge`).
            history.deleted.insert(version, rank);
        } else {
            history.refused.push(format!(
                "{qualified} installed_rank {rank}: Flyway undid version {version} ({kind}) and did not apply it again, so concertina cannot tell what the database has of it; re-apply it with `flyway migrate` or remove its file, then import again"
            ));
        }
    }
    Ok(())
}

pub(super) fn check_shape(tool: Tool, table: &Located) -> Result<(), ImportError> {
    let lacks = tool.columns().iter().any(|c| !table.columns.contains(*c));
    let wrong_tool = tool == Tool::Dbmate && table.columns.contains("dirty");
    if lacks || wrong_tool {
        let looks_like = if table.name == "schema_migrations" {
            Some(if table.columns.contains("dirty") {
                Tool::GolangMigrate
            } else {
                Tool::Dbmate
            })
        } else {
            None
        };
        return Err(shape_error(tool, table, looks_like));
    }
    Ok(())
}
