//! Helpers for the backfill tests: the library entry point and quick settings.
#![allow(dead_code)]

use crate::support::project::Project;
use concertina::backfill::{BackfillOutcome, BackfillSettings, ProgressMode};
use concertina::config::Config;
use sqlx::PgPool;

/// The library entry point over `project`'s migrations, with its config when it has one.
pub async fn run_library(
    project: &Project,
    pool: &PgPool,
    settings: &BackfillSettings,
) -> BackfillOutcome {
    let config = match project.config_file() {
        Some(file) => Config::load(Some(&file)).expect("config"),
        None => Config::default(),
    };
    let set = concertina::files::load_dir(project.migrations()).expect("load migrations");
    let migrations = concertina::analysis::analyze(&set, &config).expect("analyze");
    concertina::backfill::run_backfills(&config, pool, &migrations, settings)
        .await
        .expect("run backfills")
}

/// Settings for quick tests: small batches, no progress output.
pub fn quick(batch_size: u64) -> BackfillSettings {
    BackfillSettings {
        batch_size,
        progress: ProgressMode::Quiet,
        ..BackfillSettings::default()
    }
}
