//! SIGTERM and SIGINT during long runs (`backfill`, `post-deploy`): the first signal asks
//! the run to stop at the next safe point — after the batch in flight commits or rolls
//! back, before the next contract — so it can say where it stopped and exit 3 (a Kubernetes
//! eviction is safe to retry). A second signal ends the process at once (exit 3 too: every
//! batch and migration is its own transaction, so nothing half-done is left committed).
//!
//! Engines ask [`requested`]; the commands that run them call [`install`].

use std::sync::atomic::{AtomicBool, Ordering};

static REQUESTED: AtomicBool = AtomicBool::new(false);
static SIGNAL: std::sync::Mutex<Option<&'static str>> = std::sync::Mutex::new(None);

/// Whether a stop was asked for (by a signal, or by [`request`]).
pub fn requested() -> bool {
    REQUESTED.load(Ordering::SeqCst)
}

/// The name of the signal that asked for the stop (`SIGTERM`), if one did.
pub fn signal_name() -> &'static str {
    SIGNAL
        .lock()
        .ok()
        .and_then(|s| *s)
        .unwrap_or("a stop request")
}

/// Asks the run to stop at its next safe point, as a signal would.
pub fn request(signal: &'static str) {
    if let Ok(mut name) = SIGNAL.lock() {
        name.get_or_insert(signal);
    }
    REQUESTED.store(true, Ordering::SeqCst);
}

/// Listens for SIGTERM and SIGINT (inside a tokio runtime). Without it the default
/// actions apply (the process dies at once).
pub fn install() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) else {
            tracing::warn!("cannot listen for SIGTERM/SIGINT; a signal ends the run at once");
            return;
        };
        tokio::spawn(async move {
            loop {
                let name = tokio::select! {
                    _ = term.recv() => "SIGTERM",
                    _ = int.recv() => "SIGINT",
                };
                if requested() {
                    eprintln!(
                        "{name} again: stopping now; the next run resumes from the last checkpoint"
                    );
                    std::process::exit(3);
                }
                tracing::warn!(
                    signal = name,
                    "stopping after the batch in flight (send it again to stop at once)"
                );
                request(name);
            }
        });
    }
}
