//! concertina: expand/contract schema migrations for PostgreSQL, sequenced with Kubernetes
//! rollouts. See README.md for the walkthrough and DESIGN for the rubric.

pub mod analysis;
pub mod backfill;
pub mod classify;
pub mod cli;
pub mod config;
pub mod db;
pub mod directives;
pub mod files;
pub mod gate;
pub mod lint;
pub mod phase;
pub mod post_deploy;
pub mod report;
pub mod requires;
pub mod runner;
pub mod schema;
pub mod sql;
pub mod state;
pub mod streams;
