//! concertina: expand/contract schema migrations for PostgreSQL, sequenced with Kubernetes
//! rollouts. See README.md for the walkthrough (and its "Layout" section for this map) and
//! DESIGN for the rubric.
//!
//! The engines (`files`, `directives`, `config`, `schema`, `classify`, `analysis`, `lint`,
//! `runner`, `backfill`, `gate`, `post_deploy`) know nothing of the command line; `report`
//! renders lint results; `commands` turns arguments into engine calls and renders their
//! outcomes; `cli` is the clap definitions and the dispatch; `style` is the one place that
//! writes colour codes.

pub mod analysis;
pub mod backfill;
pub mod batching;
pub mod classify;
pub mod cli;
pub mod commands;
pub mod config;
pub mod db;
pub mod directives;
pub mod doctor;
pub mod files;
pub mod gate;
pub mod lint;
pub mod locks;
pub mod names;
pub mod outcome;
pub mod phase;
pub mod post_deploy;
pub mod recipes;
pub mod report;
pub mod requires;
pub mod runner;
pub mod schema;
pub mod shutdown;
pub mod sql;
pub mod state;
pub mod streams;
pub mod style;
