//! Password hashing with Argon2id, off the async executor and with a cap on concurrent hashes.

use std::sync::Arc;

use argon2::{
    password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString},
    Algorithm, Argon2, Params, Version,
};
use tokio::sync::Semaphore;

use crate::error::AppError;

/// OWASP Password Storage / ASVS appendix C minimum: m = 19 MiB, t = 2, p = 1.
const MEMORY_KIB: u32 = 19 * 1024;
const ITERATIONS: u32 = 2;
const PARALLELISM: u32 = 1;

fn argon2() -> Argon2<'static> {
    // These constants are valid by construction; `Params::new` only rejects out-of-range values.
    let params = Params::new(MEMORY_KIB, ITERATIONS, PARALLELISM, None)
        .unwrap_or_else(|_| Params::default());
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Hashes and verifies passwords. Cloning shares the concurrency cap.
#[derive(Clone)]
pub struct Hasher {
    /// Each hash takes ~19 MiB and tens of milliseconds of CPU. Bounding how many run at once keeps
    /// a login storm from eating the blocking pool and the machine's memory; the rest queue here.
    permits: Arc<Semaphore>,
    /// A real Argon2id hash of a random secret. Unknown usernames are verified against it so that
    /// they cost the same time as a wrong password (no user enumeration by timing).
    dummy_hash: Arc<str>,
}

impl std::fmt::Debug for Hasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hasher")
            .field("available_permits", &self.permits.available_permits())
            .finish_non_exhaustive()
    }
}

impl Hasher {
    pub async fn new() -> Result<Self, AppError> {
        let permits = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        let mut hasher = Self {
            permits: Arc::new(Semaphore::new(permits)),
            dummy_hash: Arc::from(""),
        };
        let secret = SaltString::generate(&mut OsRng).to_string();
        hasher.dummy_hash = Arc::from(hasher.hash(secret).await?);
        Ok(hasher)
    }

    /// Returns a PHC string (`$argon2id$v=19$m=19456,t=2,p=1$…`).
    pub async fn hash(&self, password: String) -> Result<String, AppError> {
        self.run(move || {
            let salt = SaltString::generate(&mut OsRng);
            argon2()
                .hash_password(password.as_bytes(), &salt)
                .map(|hash| hash.to_string())
                .map_err(|error| {
                    tracing::error!(%error, "argon2 hashing failed");
                    AppError::internal()
                })
        })
        .await
    }

    /// True when `password` matches `phc`; a malformed stored hash counts as a mismatch.
    pub async fn verify(&self, password: String, phc: String) -> Result<bool, AppError> {
        self.run(move || {
            Ok(PasswordHash::new(&phc)
                .map(|parsed| {
                    argon2()
                        .verify_password(password.as_bytes(), &parsed)
                        .is_ok()
                })
                .unwrap_or_else(|error| {
                    tracing::error!(%error, "stored password hash is malformed");
                    false
                }))
        })
        .await
    }

    /// Burns the time of one verification, for a username that does not exist.
    pub async fn verify_dummy(&self, password: String) -> Result<(), AppError> {
        self.verify(password, self.dummy_hash.to_string())
            .await
            .map(|_| ())
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> Result<T, AppError> + Send + 'static,
    ) -> Result<T, AppError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| AppError::internal())?;
        tokio::task::spawn_blocking(work).await.map_err(|error| {
            tracing::error!(%error, "password hashing task failed");
            AppError::internal()
        })?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_verify_and_use_owasp_parameters() {
        let hasher = Hasher::new().await.unwrap();
        let phc = hasher.hash("correct horse battery".into()).await.unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(hasher
            .verify("correct horse battery".into(), phc.clone())
            .await
            .unwrap());
        assert!(!hasher
            .verify("correct horse batterz".into(), phc)
            .await
            .unwrap());
        assert!(!hasher
            .verify("x".into(), "not a hash".into())
            .await
            .unwrap());
    }
}
