//! Database sessions as evidence: apps that put their version into `application_name`
//! (`sessions = "application_name:api/{version}"`) are also judged by their live sessions
//! in `pg_stat_activity` — a worker outside Kubernetes, a CronJob in a cluster the gate does
//! not read. [`read`] is the database edge, [`judge`] the pure rule.
//!
//! Limits (see the README): PgBouncer in transaction mode shows the name of whichever client
//! last set it on a server connection unless it forwards `application_name`; a role without
//! `pg_read_all_stats` (or superuser) sees other roles' sessions without client address or
//! start time, so the check blocks, saying it cannot see, unless `sessions_required = false`.

use super::{Blocker, CONFIG, GateVerdict};
use crate::config::AppConfig;
use crate::requires::{self, Requirement};
use sqlx::PgPool;
use std::collections::BTreeMap;

/// One session of the database, as `pg_stat_activity` shows it to the gate's role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// The backend's process id.
    pub pid: i32,
    /// `application_name` (visible to every role).
    pub application_name: String,
    /// The client's address (`None`: a Unix socket, or hidden from this role).
    pub client_addr: Option<String>,
    /// When the backend started (`None`: hidden from this role).
    pub backend_start: Option<String>,
    /// Whether this role may see the session's details (its own role's, or privileged).
    pub visible: bool,
}

/// What the gate's role sees of the database's sessions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionsView {
    /// The database (`current_database()`).
    pub database: String,
    /// The role asking (`current_user`).
    pub role: String,
    /// Whether the role sees every role's sessions (superuser or `pg_read_all_stats`).
    pub sees_all: bool,
    /// Every other session of the database.
    pub sessions: Vec<Session>,
}

/// Where the sessions are read from, as the command has it.
#[derive(Debug, Clone, Copy)]
pub enum SessionsSource<'a> {
    /// A pool to the migrations' database.
    Pool(&'a PgPool),
    /// The database could not be reached (why): a sessions check blocks, retry may help.
    Unreachable(&'a str),
    /// The command has no database: a sessions check is a configuration error.
    None,
}

/// pid, application_name, client address, backend start (UTC, ISO 8601).
type SessionRow = (i32, Option<String>, Option<String>, Option<String>);

/// Reads the other sessions of the current database and what the role may see of them.
pub async fn read(pool: &PgPool) -> Result<SessionsView, String> {
    let (database, role, sees_all): (String, String, bool) = sqlx::query_as(
        "SELECT current_database()::text, current_user::text, \
                (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) \
                OR pg_has_role(current_user, 'pg_read_all_stats', 'MEMBER')",
    )
    .fetch_one(pool)
    .await
    .map_err(|e| format!("cannot read the role's privileges: {e}"))?;
    // backend_start is NULL exactly when the role may not see the session's details.
    let rows: Vec<SessionRow> = sqlx::query_as(
        "SELECT pid, application_name, host(client_addr), \
                to_char(backend_start AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') \
         FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid() \
         ORDER BY pid",
    )
    .fetch_all(pool)
    .await
    .map_err(|e| format!("cannot read pg_stat_activity: {e}"))?;
    let sessions = rows
        .into_iter()
        .map(|(pid, name, client_addr, backend_start)| Session {
            pid,
            application_name: name.unwrap_or_default(),
            client_addr,
            visible: backend_start.is_some(),
            backend_start,
        })
        .collect();
    Ok(SessionsView {
        database,
        role,
        sees_all,
        sessions,
    })
}

/// Whether any requirement's app is checked by its sessions.
pub fn any_checked(apps: &BTreeMap<String, AppConfig>, requires: &[Requirement]) -> bool {
    requires
        .iter()
        .any(|r| apps.get(&r.app).is_some_and(|a| a.sessions.is_some()))
}

/// Where session blockers were seen, for the report's `cluster` key.
fn place(database: &str) -> String {
    format!("database sessions (pg_stat_activity of database {database})")
}

/// Judges the sessions of each app that declares `sessions`: any session of the app whose
/// version fails the requirement blocks, and so does not being able to see (unless the app
/// says `sessions_required = false`, then it is a note).
pub fn judge(
    view: Result<&SessionsView, &str>,
    apps: &BTreeMap<String, AppConfig>,
    requires: &[Requirement],
) -> GateVerdict {
    let mut verdict = GateVerdict::holds();
    for requirement in requires {
        let Some(app) = apps.get(&requirement.app) else {
            continue;
        };
        let Some(pattern) = &app.sessions else {
            continue;
        };
        let blocker = |kind: &str, name: String, seen: Option<String>, reason: String| Blocker {
            kind: kind.into(),
            namespace: String::new(),
            name,
            app: requirement.app.clone(),
            version_seen: seen,
            required: requirement.to_string(),
            reason,
            context: None,
            cluster: Some(place(view.map_or("?", |v| v.database.as_str()))),
        };
        let view = match view {
            Ok(view) => view,
            Err(reason) => {
                verdict.blocking.push(blocker(
                    "Sessions",
                    "pg_stat_activity".into(),
                    None,
                    format!(
                        "[apps.{}] sessions = \"{pattern}\": {reason}",
                        requirement.app
                    ),
                ));
                continue;
            }
        };
        for session in &view.sessions {
            let Some(raw) = pattern.version_in(&session.application_name) else {
                continue;
            };
            let problem = match requires::parse_version(raw) {
                Ok(version) if requirement.is_satisfied_by(&version) => continue,
                Ok(_) => format!("{raw} fails {requirement}"),
                Err(_) => format!("version `{raw}` is not semver"),
            };
            let hidden = "hidden from this role";
            verdict.blocking.push(blocker(
                "Session",
                format!("pid {}", session.pid),
                Some(raw.to_string()),
                format!(
                    "live database session pid {} from {}, started {}, application_name `{}`: {problem}; it is an old client the cluster may not show (stop it, or wait for it to reconnect as the new version)",
                    session.pid,
                    match (&session.client_addr, session.visible) {
                        (Some(addr), _) => addr.as_str(),
                        (None, true) => "a local socket",
                        (None, false) => hidden,
                    },
                    session.backend_start.as_deref().unwrap_or(hidden),
                    session.application_name,
                ),
            ));
        }
        if !view.sees_all {
            let hidden = view.sessions.iter().filter(|s| !s.visible).count();
            let why = format!(
                "role `{role}` cannot see other roles' sessions in full ({hidden} session{s} of database {db} hidden), so the sessions check cannot vouch for [apps.{app}]; grant it: GRANT pg_read_all_stats TO \"{role}\"",
                role = view.role,
                s = if hidden == 1 { "" } else { "s" },
                db = view.database,
                app = requirement.app,
            );
            if app.sessions_required {
                verdict.blocking.push(blocker(
                    "Sessions",
                    "pg_stat_activity".into(),
                    None,
                    format!(
                        "{why}, or set sessions_required = false under [apps.{}]",
                        requirement.app
                    ),
                ));
            } else {
                let note = format!("{why} (sessions_required = false: not blocking)");
                if !verdict.notes.contains(&note) {
                    verdict.notes.push(note);
                }
            }
        }
    }
    verdict.holds = verdict.blocking.is_empty();
    verdict
}

/// The verdict when the command cannot give the sessions check a database.
pub fn without_database(
    source: SessionsSource<'_>,
    apps: &BTreeMap<String, AppConfig>,
    requires: &[Requirement],
) -> Option<GateVerdict> {
    if !any_checked(apps, requires) {
        return Some(GateVerdict::holds());
    }
    match source {
        SessionsSource::Pool(_) => None,
        SessionsSource::Unreachable(reason) => Some(judge(Err(reason), apps, requires)),
        SessionsSource::None => {
            let mut verdict = judge(
                Err(
                    "the sessions check needs the database, and this command has none: pass --database-url or set DATABASE_URL",
                ),
                apps,
                requires,
            );
            for blocker in &mut verdict.blocking {
                blocker.kind = CONFIG.into();
            }
            Some(verdict)
        }
    }
}
