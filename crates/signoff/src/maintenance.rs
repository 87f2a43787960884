//! Maintenance that runs for as long as the process does: the expiry sweep of sessions, counted
//! sign-in attempts, trust in clients and used logout tokens, and the adoption of accounts an
//! older instance made. Above the modules whose rows it deletes, so that none of them reaches up
//! to it.

use std::time::Duration;

use crate::session::Store;
use crate::throttle::{self, ThrottleSettings};
use crate::{names, trust};

/// The name of the shared job that sweeps expired sessions (a row of `maintenance`).
const SWEEP_JOB: &str = "sweep_expired_sessions";

/// Deletes expired rows once per `period` across all instances, for as long as the process runs:
/// sessions, counted sign-in attempts that have left their window, and expired trust in clients.
/// Every instance ticks, but only the one that claims the period (a row of the `maintenance`
/// table) sweeps. A failed sweep (database down) is logged and retried at the next tick instead of
/// ending the task.
pub async fn sweep_expired(store: Store, period: Duration, settings: ThrottleSettings) {
    let mut ticker = tokio::time::interval(period);
    loop {
        ticker.tick().await;
        // Claim slightly less than a period so jitter between instances never skips one.
        let claim = period.mul_f64(0.9);
        match store.db().claim_job(SWEEP_JOB, claim).await {
            Ok(true) => {
                match store.delete_expired().await {
                    Ok(swept) if swept.rows > 0 => tracing::info!(
                        rows = swept.rows,
                        batches = swept.batches,
                        longest_batch_ms = swept.longest_batch.as_millis() as u64,
                        "swept expired sessions"
                    ),
                    Ok(_) => {}
                    Err(error) => {
                        tracing::warn!(%error, "could not delete expired sessions; will retry");
                    }
                }
                if let Err(error) = throttle::forget_old(store.db(), &settings).await {
                    tracing::warn!(%error, "could not forget old sign-in attempts; will retry");
                }
                if let Err(error) = trust::forget_expired(store.db()).await {
                    tracing::warn!(%error, "could not forget expired trust; will retry");
                }
                if let Err(error) = store.forget_used_logout_tokens().await {
                    tracing::warn!(%error, "could not forget used logout tokens; will retry");
                }
                if let Err(error) = crate::mail_tokens::forget_expired(store.db()).await {
                    tracing::warn!(%error, "could not forget expired mail links; will retry");
                }
                if let Err(error) = crate::webauthn::forget_expired(store.db()).await {
                    tracing::warn!(%error, "could not forget expired passkey ceremonies; will retry");
                }
                if let Err(error) = crate::mail::forget_old(store.db()).await {
                    tracing::warn!(%error, "could not forget old mail; will retry");
                }
                // Accounts an older instance made during a rolling upgrade (usually none).
                if let Err(error) = names::adopt_old_names(store.db()).await {
                    tracing::warn!(%error, "could not adopt old names; will retry");
                }
            }
            Ok(false) => tracing::trace!("another instance swept expired sessions this period"),
            Err(error) => tracing::warn!(%error, "could not claim the session sweep; will retry"),
        }
    }
}
