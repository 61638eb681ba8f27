//! Reports: `lint` in human, JSON, GitHub and SARIF forms, and `plan`.

use crate::analysis::{self, AnalyzedMigration};
use crate::cli::{CommandError, Context, Exit, Format, LintArgs};
use crate::files::{self, Migration};
use crate::lint::{self, Finding, Severity};
use crate::sql::LineIndex;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

/// Analyzes `set`: with a database URL (and not `offline`), the pending migrations are
/// judged against the live schema, and they are the release being judged; without one, or
/// when the database cannot be read, against the replayed history (with a warning on
/// stderr: lint never needs a database), where `release` (the files added since `--base`,
/// empty without it) is the release.
pub async fn analyze_against_database(
    ctx: &Context,
    set: &files::MigrationSet,
    offline: bool,
    release: &BTreeSet<u64>,
) -> Result<Vec<AnalyzedMigration>, CommandError> {
    let usage = |e: analysis::AnalysisError| CommandError::usage(e.to_string());
    let Some(url) = ctx.database_url.as_deref().filter(|_| !offline) else {
        return analysis::analyze_release(set, &ctx.config, release).map_err(usage);
    };
    match live_schema(url).await {
        Ok((base, applied)) => {
            analysis::analyze_with_base(set, &ctx.config, &base, &applied).map_err(usage)
        }
        Err(reason) => {
            eprintln!(
                "warning: {reason}; judging against the migration history instead (pass --offline to skip the database)"
            );
            analysis::analyze_release(set, &ctx.config, release).map_err(usage)
        }
    }
}

/// The live schema and the applied versions of the database at `url`.
async fn live_schema(
    url: &str,
) -> Result<(crate::schema::SchemaModel, std::collections::BTreeSet<u64>), String> {
    let pool = crate::db::connect(url).await.map_err(|e| e.to_string())?;
    let base = crate::schema::SchemaModel::from_database(&pool)
        .await
        .map_err(|e| e.to_string())?;
    let applied = crate::state::applied(&pool)
        .await
        .map_err(|e| crate::db::redact(&e.to_string()))?
        .into_keys()
        .collect();
    pool.close().await;
    Ok((base, applied))
}

/// `concertina lint`.
pub async fn run_lint(ctx: &Context, args: &LintArgs) -> Result<Exit, CommandError> {
    let set = if args.paths.is_empty() {
        ctx.load_migrations()?
    } else {
        files::load_paths(&args.paths).map_err(|e| CommandError::usage(e.to_string()))?
    };
    // Which files are new must be known before the analysis: they are the release, whose
    // tables are new for the later files (offline, without a database to say what is applied).
    let changes = match &args.base {
        Some(base) => Some(changes_since(&set, base)?),
        None => None,
    };
    let release: BTreeSet<u64> = changes
        .iter()
        .flatten()
        .filter(|(_, change)| **change == Change::Added)
        .map(|(version, _)| *version)
        .collect();
    let mut analyzed = analyze_against_database(ctx, &set, args.offline, &release).await?;
    if let (Some(base), Some(changes)) = (&args.base, &changes) {
        analyzed = since_base(analyzed, base, changes);
        // Offline, "pending" can only mean "new in this change": every file kept by --base.
        crate::streams::flag_expands_touching_waiting_contracts(&mut analyzed, |_| true);
    }
    let output = match ctx.format {
        Format::Human => human_lint(&analyzed),
        Format::Json => {
            serde_json::to_string_pretty(&json_lint(&analyzed)).unwrap_or_default() + "\n"
        }
        Format::Github => github_lint(&analyzed),
        Format::Sarif => {
            serde_json::to_string_pretty(&sarif_lint(&analyzed)).unwrap_or_default() + "\n"
        }
    };
    print!("{output}");
    let failed = analyzed.iter().any(AnalyzedMigration::has_errors);
    Ok(if failed { Exit::Failure } else { Exit::Ok })
}

/// How a migration file stands against the `--base` commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Change {
    /// It did not exist there: new in this change.
    Added,
    /// It existed with the same bytes.
    Unchanged,
    /// It existed with other bytes.
    Edited,
}

/// How each migration of `set` (by version) stands against git commit `base`: one `git
/// show` per file.
fn changes_since(
    set: &files::MigrationSet,
    base: &str,
) -> Result<BTreeMap<u64, Change>, CommandError> {
    let verify = Command::new("git")
        .args([
            "rev-parse",
            "--verify",
            "--quiet",
            &format!("{base}^{{commit}}"),
        ])
        .output()
        .map_err(|e| CommandError::usage(format!("--base needs git, which cannot run: {e}")))?;
    if !verify.status.success() {
        return Err(CommandError::usage(format!(
            "--base {base}: no such git commit here; fetch it first (e.g. `git fetch origin {base}`) or check the name"
        )));
    }
    let mut changes = BTreeMap::new();
    for migration in &set.migrations {
        let change = match file_at_ref(&migration.path, base)? {
            None => Change::Added,
            Some(old) if old == migration.sql.as_bytes() => Change::Unchanged,
            Some(_) => Change::Edited,
        };
        changes.insert(migration.version, change);
    }
    Ok(changes)
}

/// Keeps the migrations added or changed since git `base`; flags edits of existing ones.
fn since_base(
    analyzed: Vec<AnalyzedMigration>,
    base: &str,
    changes: &BTreeMap<u64, Change>,
) -> Vec<AnalyzedMigration> {
    let mut kept = Vec::new();
    for mut migration in analyzed {
        match changes.get(&migration.migration.version) {
            Some(Change::Unchanged) => {}
            Some(Change::Edited) => {
                migration.findings.insert(
                    0,
                    lint::finding(
                        "edited-migration",
                        1,
                        1,
                        format!(
                            "{} existed at {base} and was edited; databases that applied it will not see the change, and `verify` reports drift",
                            migration.migration.display_path()
                        ),
                        "restore the file and put the change in a new migration with a higher version",
                    ),
                );
                kept.push(migration);
            }
            Some(Change::Added) | None => kept.push(migration),
        }
    }
    kept
}

/// The bytes of `path` at git ref `base`, or `None` when it did not exist there.
fn file_at_ref(path: &Path, base: &str) -> Result<Option<Vec<u8>>, CommandError> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    let output = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["show", &format!("{base}:./{name}")])
        .output()
        .map_err(|e| CommandError::usage(format!("--base needs git, which cannot run: {e}")))?;
    Ok(output.status.success().then_some(output.stdout))
}

fn count(analyzed: &[AnalyzedMigration]) -> (usize, usize) {
    let findings = analyzed
        .iter()
        .flat_map(|m| &m.findings)
        .filter(|f| f.allowed.is_none());
    findings.fold((0, 0), |(e, w), f| match f.severity {
        Severity::Error => (e + 1, w),
        Severity::Warning => (e, w + 1),
    })
}

/// rustc-like diagnostics, then one line per file with its phase, then a summary.
pub fn human_lint(analyzed: &[AnalyzedMigration]) -> String {
    let mut out = String::new();
    for migration in analyzed {
        let path = migration.migration.display_path();
        let index = LineIndex::new(&migration.migration.sql);
        for f in &migration.findings {
            let label = match (&f.allowed, f.severity) {
                (Some(_), _) => "allowed",
                (None, severity) => severity.as_str(),
            };
            let _ = writeln!(out, "{label}[{}]: {}", f.rule, f.message);
            let _ = writeln!(out, "  --> {path}:{}:{}", f.line, f.column);
            let number = f.line.to_string();
            let pad = " ".repeat(number.len());
            let _ = writeln!(out, " {pad} |");
            let _ = writeln!(out, " {number} | {}", index.line_text(f.line));
            let _ = writeln!(out, " {pad} |");
            match &f.allowed {
                Some(reason) => {
                    let _ = writeln!(out, " {pad} = allowed: {reason}");
                }
                None => {
                    let _ = writeln!(out, " {pad} = help: {}", f.help);
                }
            }
            out.push('\n');
        }
    }
    for migration in analyzed {
        let verdict = if migration.has_errors() { "FAIL" } else { "ok" };
        let gate = migration.gate_text();
        let _ = writeln!(
            out,
            "{verdict:4} {}  {} ({}){}",
            migration.migration.display_path(),
            phase_label(migration),
            migration.stream(),
            if gate.is_empty() {
                String::new()
            } else {
                format!(", gate {gate}")
            }
        );
    }
    let (errors, warnings) = count(analyzed);
    let _ = writeln!(
        out,
        "\n{} file{}: {errors} error{}, {warnings} warning{}",
        analyzed.len(),
        plural(analyzed.len()),
        plural(errors),
        plural(warnings)
    );
    out
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

fn phase_label(migration: &AnalyzedMigration) -> String {
    match (migration.declared_phase, migration.inferred_phase) {
        (Some(d), Some(i)) if d != i => {
            format!("{} (declared; statements need {i})", migration.phase)
        }
        (Some(_), None) => format!("{} (declared)", migration.phase),
        (None, None) => format!("{} (unknown: assumed)", migration.phase),
        _ => migration.phase.to_string(),
    }
}

fn finding_json(f: &Finding) -> Value {
    json!({
        "rule": f.rule,
        "severity": f.severity,
        "line": f.line,
        "column": f.column,
        "message": f.message,
        "help": f.help,
        "allowed": f.allowed,
    })
}

/// The migration as a JSON object (shared by `lint` and `plan`).
pub fn migration_json(migration: &AnalyzedMigration) -> Value {
    json!({
        "path": migration.migration.display_path(),
        "version": migration.migration.version,
        "name": migration.migration.description,
        "phase": migration.phase,
        "declared_phase": migration.declared_phase,
        "inferred_phase": migration.inferred_phase,
        "stream": migration.stream(),
        "requires": migration.requires,
        "no_transaction": migration.no_transaction,
        "checksum": migration.migration.checksum,
    })
}

/// `lint --format json`: `{files: [{path, phase, findings: [...]}], summary}`.
pub fn json_lint(analyzed: &[AnalyzedMigration]) -> Value {
    let files: Vec<Value> = analyzed
        .iter()
        .map(|m| {
            let mut object = migration_json(m);
            object["findings"] = m.findings.iter().map(finding_json).collect();
            object["statements"] = m
                .statements
                .iter()
                .map(|s| json!({"line": s.line, "column": s.column, "class": s.verdict.class, "kind": s.verdict.kind, "reason": s.verdict.reason}))
                .collect();
            object
        })
        .collect();
    let (errors, warnings) = count(analyzed);
    json!({"files": files, "summary": {"files": analyzed.len(), "errors": errors, "warnings": warnings}})
}

fn escape_data(text: &str) -> String {
    text.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

fn escape_property(text: &str) -> String {
    escape_data(text).replace(':', "%3A").replace(',', "%2C")
}

/// `lint --format github`: workflow-command annotations.
pub fn github_lint(analyzed: &[AnalyzedMigration]) -> String {
    let mut out = String::new();
    for migration in analyzed {
        for f in migration.findings.iter().filter(|f| f.allowed.is_none()) {
            let _ = writeln!(
                out,
                "::{} file={},line={},col={},title={}::{}",
                f.severity.as_str(),
                escape_property(&migration.migration.display_path()),
                f.line,
                f.column,
                escape_property(&format!("concertina {}", f.rule)),
                escape_data(&format!("{}\nhelp: {}", f.message, f.help))
            );
        }
    }
    out
}

/// `lint --format sarif`: SARIF 2.1.0, with allowed findings as in-source suppressions.
pub fn sarif_lint(analyzed: &[AnalyzedMigration]) -> Value {
    let rules: Vec<Value> = lint::RULES
        .iter()
        .map(|r| {
            json!({
                "id": r.id,
                "name": r.id,
                "shortDescription": {"text": r.summary},
                "defaultConfiguration": {"level": r.severity.as_str()},
                "helpUri": format!("https://github.com/concertina/concertina#rule-{}", r.id),
            })
        })
        .collect();
    let mut results = Vec::new();
    for migration in analyzed {
        for f in &migration.findings {
            let index = lint::RULES.iter().position(|r| r.id == f.rule).unwrap_or(0);
            let mut result = json!({
                "ruleId": f.rule,
                "ruleIndex": index,
                "level": f.severity.as_str(),
                "message": {"text": format!("{} Help: {}", f.message, f.help)},
                "locations": [{"physicalLocation": {
                    "artifactLocation": {"uri": migration.migration.display_path().replace('\\', "/")},
                    "region": {"startLine": f.line, "startColumn": f.column}
                }}],
            });
            if let Some(reason) = &f.allowed {
                result["suppressions"] = json!([{"kind": "inSource", "justification": reason}]);
            }
            results.push(result);
        }
    }
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "concertina",
                "version": env!("CARGO_PKG_VERSION"),
                "informationUri": "https://github.com/concertina/concertina",
                "rules": rules,
            }},
            "results": results,
        }],
    })
}

/// `concertina plan`: every migration with its phase, stream and gate (and, with a
/// database, its state).
pub async fn run_plan(ctx: &Context) -> Result<Exit, CommandError> {
    ctx.require_human_or_json("plan")?;
    let set = ctx.load_migrations()?;
    if let Some(url) = ctx.database_url.as_deref() {
        // With a database the plan shows its state: an unreachable one is an error, said
        // once (rather than a fallback warning followed by the same error).
        let pool = crate::db::connect(url)
            .await
            .map_err(|e| CommandError::failure(e.to_string()))?;
        pool.close().await;
    }
    let analyzed = analyze_against_database(ctx, &set, false, &BTreeSet::new()).await?;
    let states = crate::runner::plan_states(ctx).await?;
    print!("{}", plan_output(&analyzed, states.as_ref(), ctx.format));
    Ok(Exit::Ok)
}

/// Renders the plan; `states` maps versions to their state when a database was read.
pub fn plan_output(
    analyzed: &[AnalyzedMigration],
    states: Option<&BTreeMap<u64, String>>,
    format: Format,
) -> String {
    if format == Format::Json {
        let migrations: Vec<Value> = analyzed
            .iter()
            .map(|m| {
                let mut object = migration_json(m);
                object["gate"] = json!(m.gate_text());
                object["lint_errors"] =
                    json!(m.findings.iter().filter(|f| f.is_blocking()).count());
                if let Some(states) = states {
                    object["state"] = json!(
                        states
                            .get(&m.migration.version)
                            .map_or("pending", String::as_str)
                    );
                }
                object
            })
            .collect();
        return serde_json::to_string_pretty(&json!({"migrations": migrations}))
            .unwrap_or_default()
            + "\n";
    }
    let mut rows = vec![vec![
        "VERSION".to_string(),
        "NAME".into(),
        "PHASE".into(),
        "DECLARED".into(),
        "INFERRED".into(),
        "STREAM".into(),
        "GATE".into(),
        "LINT".into(),
    ]];
    if states.is_some() {
        rows[0].push("STATE".into());
    }
    for m in analyzed {
        let errors = m.findings.iter().filter(|f| f.is_blocking()).count();
        let mut row = vec![
            m.migration.version.to_string(),
            m.migration.description.clone(),
            m.phase.to_string(),
            m.declared_phase.map_or("-".into(), |p| p.to_string()),
            m.inferred_phase.map_or("unknown".into(), |p| p.to_string()),
            m.stream().to_string(),
            Some(m.gate_text())
                .filter(|g| !g.is_empty())
                .unwrap_or_else(|| "-".into()),
            if errors == 0 {
                "ok".into()
            } else {
                format!("{errors} error{}", plural(errors))
            },
        ];
        if let Some(states) = states {
            row.push(
                states
                    .get(&m.migration.version)
                    .cloned()
                    .unwrap_or_else(|| "pending".into()),
            );
        }
        rows.push(row);
    }
    let (errors, warnings) = count(analyzed);
    let verdict = if errors == 0 { "passes" } else { "fails" };
    format!(
        "{}\nlint {verdict}: {} migration{}, {errors} error{}, {warnings} warning{}{}\n",
        table(&rows),
        analyzed.len(),
        plural(analyzed.len()),
        plural(errors),
        plural(warnings),
        if errors + warnings > 0 {
            " (run `concertina lint` for details)"
        } else {
            ""
        }
    )
}

/// Left-aligned columns separated by two spaces.
pub fn table(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let line: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(c, cell)| format!("{cell:<width$}", width = widths[c]))
            .collect();
        let _ = writeln!(out, "{}", line.join("  ").trim_end());
    }
    out
}

/// The migration of `analyzed` with `version`.
pub fn find(analyzed: &[AnalyzedMigration], version: u64) -> Option<&AnalyzedMigration> {
    analyzed.iter().find(|m| m.migration.version == version)
}

/// The migration a file path names (used in messages).
pub fn describe(migration: &Migration) -> String {
    format!("{} ({})", migration.version, migration.display_path())
}
