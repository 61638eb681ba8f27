//! `concertina lint [PATHS…] [--base REF] [--offline]`: classify and lint, no database
//! needed; with one, the pending files are judged against its live catalog.

use super::{CommandError, Context, Exit, Format};
use crate::analysis::{self, AnalyzedMigration};
use crate::files;
use crate::lint;
use crate::report::{self, Reporter};
use crate::runner;
use crate::schema::SchemaModel;
use clap::Args;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

/// `lint` arguments.
#[derive(Debug, Args)]
pub struct LintArgs {
    /// Files or folders to lint, or `-` for one migration on standard input (judged as the
    /// folder's next file) [default: the migrations folder]
    pub paths: Vec<PathBuf>,
    /// Lint only migrations added or changed since this git ref; flag edits of older ones
    #[arg(long, value_name = "REF")]
    pub base: Option<String>,
    /// Judge against the replayed history even when a database URL is given
    #[arg(long)]
    pub offline: bool,
}

/// The reporter of `format`.
pub fn reporter(format: Format) -> Reporter {
    match format {
        Format::Human => report::human::render,
        Format::Json => report::json::render,
        Format::Github => report::github::render,
        Format::Sarif => report::sarif::render,
        Format::Gitlab => report::gitlab::render,
        Format::Compact => report::compact::render,
    }
}

/// Runs the command: exit 0 clean or warnings only, 1 on errors.
pub async fn run(ctx: &Context, args: &LintArgs) -> Result<Exit, CommandError> {
    check_kubeconfig_context(ctx)?;
    if args.paths.iter().any(|p| p.as_os_str() == "-") {
        return lint_stdin(ctx, args).await;
    }
    let set = if args.paths.is_empty() {
        ctx.load_migrations()?
    } else {
        files::load_paths_as(&args.paths, ctx.config.layout)
            .map_err(|e| CommandError::usage(e.to_string()))?
    };
    // Which files are new must be known before the analysis: they are the release, whose
    // tables are new for the later files (offline, without a database to say what is applied).
    let changes = match &args.base {
        Some(base) => Some(changes_since(&set, base)?),
        None => None,
    };
    if let (Some(base), Some(changes)) = (&args.base, &changes) {
        refuse_out_of_order(ctx, &set, base, changes)?;
    }
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
    print!("{}", reporter(ctx.format)(&analyzed));
    let failed = analyzed.iter().any(AnalyzedMigration::has_errors);
    Ok(if failed { Exit::Failure } else { Exit::Ok })
}

/// `lint -`: one migration from standard input, judged as the next file of the migrations
/// folder (its history, and with a database URL the live schema); only it is reported. A
/// folder that does not exist gives no history (said on stderr); one that does not load is
/// an error, as for `lint`.
async fn lint_stdin(ctx: &Context, args: &LintArgs) -> Result<Exit, CommandError> {
    if args.paths.len() != 1 || args.base.is_some() {
        return Err(CommandError::usage(
            "`lint -` reads one migration from standard input: give no other path, and no --base",
        ));
    }
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut std::io::stdin(), &mut bytes)
        .map_err(|e| CommandError::usage(format!("cannot read standard input: {e}")))?;
    let mut set = if ctx.migrations_dir.exists() {
        ctx.load_migrations()?
    } else {
        eprintln!(
            "note: no migrations folder at {}: the input is judged without history (pass --migrations DIR)",
            ctx.migrations_dir.display()
        );
        files::MigrationSet::default()
    };
    let input =
        files::stdin_migration(bytes, &set).map_err(|e| CommandError::usage(e.to_string()))?;
    let version = input.version;
    set.migrations.push(input);
    let analyzed = analyze_against_database(ctx, &set, args.offline, &BTreeSet::new()).await?;
    let analyzed: Vec<AnalyzedMigration> = analyzed
        .into_iter()
        .filter(|m| m.migration.version == version)
        .collect();
    print!("{}", reporter(ctx.format)(&analyzed));
    let failed = analyzed.iter().any(AnalyzedMigration::has_errors);
    Ok(if failed { Exit::Failure } else { Exit::Ok })
}

/// The whole config is checked before a Job meets it (selectors and version sources when
/// it is loaded): here the context `[kubernetes] context` names, when a kubeconfig is
/// readable (exit 2 without it), with a note when none is.
fn check_kubeconfig_context(ctx: &Context) -> Result<(), CommandError> {
    let Some(context) = ctx.config.kubernetes.context.as_deref() else {
        return Ok(());
    };
    match crate::gate::check_context(context) {
        Ok(crate::gate::ContextCheck::Found) => Ok(()),
        Ok(crate::gate::ContextCheck::NotChecked(why)) => {
            eprintln!(
                "note: the kubeconfig context `{context}` named in concertina.toml is not checked: no kubeconfig can be read here ({why})"
            );
            Ok(())
        }
        Err(error) => Err(CommandError::usage(error.to_string())),
    }
}

/// Exit 2 when a file added since `base` has a version below a file `base` already has
/// (unless the config says `out_of_order = "allow"`): every database that applied that file
/// would refuse it in `pre-deploy`.
fn refuse_out_of_order(
    ctx: &Context,
    set: &files::MigrationSet,
    base: &str,
    changes: &BTreeMap<u64, Change>,
) -> Result<(), CommandError> {
    if ctx.config.out_of_order == crate::config::OutOfOrder::Allow {
        return Ok(());
    }
    let late = crate::runner::new_below_existing(set, |version| {
        changes.get(&version) == Some(&Change::Added)
    });
    if late.is_empty() {
        return Ok(());
    }
    let lines: String = late
        .iter()
        .map(|f| {
            format!(
                "  {} (version {}) is new since {base} but below version {} ({}), which {base} already has\n",
                f.path, f.version, f.applied_version, f.applied_name
            )
        })
        .collect();
    Err(CommandError::usage(format!(
        "migrations out of order:\n{lines}a database that applied the newer file would refuse them: give each a version above {} (rename the file; `concertina new` picks the next), or set out_of_order = \"allow\" in concertina.toml",
        late.iter()
            .map(|f| f.applied_version)
            .max()
            .unwrap_or_default()
    )))
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
            // The whole file as it is now (a dbmate file's `sql` is its up section only).
            Some(old) if std::fs::read(&migration.path).is_ok_and(|now| now == old) => {
                Change::Unchanged
            }
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
                let path = migration.migration.display_path();
                migration
                    .findings
                    .insert(0, lint::rules::edited_migration::finding(&path, base));
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
            if !ctx.quiet {
                eprintln!(
                    "warning: {reason}; judging against the migration history instead (pass --offline to skip the database)"
                );
            }
            analysis::analyze_release(set, &ctx.config, release).map_err(usage)
        }
    }
}

/// The live schema and the applied versions of the database at `url`.
async fn live_schema(url: &str) -> Result<(SchemaModel, BTreeSet<u64>), String> {
    let pool = crate::db::connect(url).await.map_err(|e| e.to_string())?;
    let base = runner::live_schema(&pool)
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
