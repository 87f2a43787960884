//! Password hashing with Argon2id, off the async executor, with a cap on concurrent hashes and
//! one reusable working memory per permitted hash.

use std::sync::{Arc, Mutex};

use argon2::{
    password_hash::{
        self,
        phc::{Output, ParamsString, PasswordHash, Salt},
    },
    Algorithm, Argon2, Block, Params, Version,
};
use tokio::sync::Semaphore;

use crate::error::AppError;

/// OWASP Password Storage / ASVS appendix C minimum: m = 19 MiB, t = 2, p = 1.
const MEMORY_KIB: u32 = 19 * 1024;
const ITERATIONS: u32 = 2;
const PARALLELISM: u32 = 1;
/// How long a request waits for a hashing slot before it is answered 503 (`Retry-After`).
const QUEUE_WAIT: std::time::Duration = std::time::Duration::from_secs(2);
/// Requests waiting for a slot, per slot, beyond which a new one is answered 503 at once: about
/// what the slots clear within `QUEUE_WAIT`.
const WAITING_PER_PERMIT: usize = 16;

fn params() -> Params {
    // These constants are valid by construction; `Params::new` only rejects out-of-range values.
    Params::new(MEMORY_KIB, ITERATIONS, PARALLELISM, None).unwrap_or_else(|_| Params::default())
}

/// NIST SP 800-63B-4 §3.1.1.2: a password is normalised (NFKC) before it is hashed, so that the
/// same characters typed on another keyboard or system (composed or decomposed accents,
/// full-width letters) are the same password. Everything about a password (its length, the
/// blocklist, the hash) is about this form.
pub fn normalise(password: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    password.nfkc().collect()
}

/// How a password matched a stored hash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Match {
    /// It does not match.
    No,
    /// Its normal form matched: the hash is current.
    Yes,
    /// Only the password as typed matched: the hash predates normalisation. Store a new hash of
    /// the normal form ([`Hasher::hash`]) now that the password is known.
    AsTyped,
    /// Its normal form matched a hash made with other parameters than today's (algorithm,
    /// version, memory, iterations, parallelism or length: a cost raised since). Store a new
    /// hash now that the password is known.
    Outdated,
}

impl Match {
    /// Whether it matched, as typed or normalised.
    pub fn matched(self) -> bool {
        self != Match::No
    }
}

/// The working memory of one Argon2 computation: `m` blocks of 1 KiB.
type Memory = Vec<Block>;

/// Hashes and verifies passwords. Cloning shares the concurrency cap and the memories.
#[derive(Clone)]
pub struct Hasher {
    /// Each hash takes ~19 MiB and tens of milliseconds of CPU. Bounding how many run at once keeps
    /// a login storm from eating the blocking pool and the machine's memory; the rest queue here.
    permits: Arc<Semaphore>,
    /// How many permits there are, and how many requests wait for one: the queue is bounded
    /// (length and wait), so a flood is shed with 503 instead of delaying everyone's sign-in.
    capacity: usize,
    waiting: Arc<std::sync::atomic::AtomicUsize>,
    /// One working memory per permit, allocated once and reused. Argon2's own `hash_password`
    /// allocates 19 MiB per call on whichever blocking-pool thread runs it, and glibc keeps such
    /// freed blocks in per-thread arenas: a login storm grew the server from 38 MiB to 506 MiB
    /// (`make bench`). Reused memories hold it at one 19 MiB block per permit.
    memories: Arc<Mutex<Vec<Memory>>>,
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
    /// A hasher with its dummy hash ready (made on the blocking pool).
    pub async fn new() -> Result<Self, AppError> {
        let permits = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        let mut hasher = Self {
            permits: Arc::new(Semaphore::new(permits)),
            capacity: permits,
            waiting: Arc::new(std::sync::atomic::AtomicUsize::new(0)),
            memories: Arc::new(Mutex::new(Vec::with_capacity(permits))),
            dummy_hash: Arc::from(""),
        };
        let secret = Salt::generate().to_string();
        hasher.dummy_hash = Arc::from(hasher.hash(secret).await?);
        Ok(hasher)
    }

    /// Returns a PHC string (`$argon2id$v=19$m=19456,t=2,p=1$…`) of the password's normal form.
    pub async fn hash(&self, password: String) -> Result<String, AppError> {
        let password = normalise(&password);
        self.run(move |memory| {
            hash_with(memory, password.as_bytes()).map_err(|error| {
                tracing::error!(%error, "argon2 hashing failed");
                AppError::internal()
            })
        })
        .await
    }

    /// Whether `password` matches `phc`. The normal form is tried first; a password that is not
    /// in normal form is then tried as typed, which only a hash made before normalisation can
    /// match ([`Match::AsTyped`]). A malformed stored hash counts as a mismatch.
    pub async fn verify(&self, password: String, phc: String) -> Result<Match, AppError> {
        let normal = normalise(&password);
        let as_typed = (normal != password).then_some(password);
        self.run(move |memory| {
            let mut matches = |password: &str| {
                verify_with(memory, password.as_bytes(), &phc).unwrap_or_else(|error| {
                    tracing::error!(%error, "stored password hash is malformed");
                    false
                })
            };
            Ok(if matches(&normal) {
                if is_current(&phc) {
                    Match::Yes
                } else {
                    Match::Outdated
                }
            } else if as_typed.as_deref().is_some_and(matches) {
                Match::AsTyped
            } else {
                Match::No
            })
        })
        .await
    }

    /// Burns the time of a verification (one or two hashes, as [`verify`](Self::verify) would
    /// spend on this password), for a username that does not exist.
    pub async fn verify_dummy(&self, password: String) -> Result<(), AppError> {
        self.verify(password, self.dummy_hash.to_string())
            .await
            .map(|_| ())
    }

    fn pool(&self) -> std::sync::MutexGuard<'_, Vec<Memory>> {
        // A panic while holding this lock leaves the list itself intact.
        self.memories
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A hashing slot within [`QUEUE_WAIT`], or 503 "busy": the wait and the queue are bounded.
    async fn permit(&self) -> Result<tokio::sync::OwnedSemaphorePermit, AppError> {
        use std::sync::atomic::Ordering;
        struct Waiting<'a>(&'a std::sync::atomic::AtomicUsize);
        impl Drop for Waiting<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::Relaxed);
            }
        }
        let ahead = self.waiting.fetch_add(1, Ordering::Relaxed);
        let _waiting = Waiting(&self.waiting);
        if ahead >= self.capacity * WAITING_PER_PERMIT {
            tracing::warn!(waiting = ahead, "password hashing queue full; shedding");
            return Err(AppError::busy());
        }
        match tokio::time::timeout(QUEUE_WAIT, Arc::clone(&self.permits).acquire_owned()).await {
            Ok(Ok(permit)) => Ok(permit),
            Ok(Err(_)) => Err(AppError::internal()),
            Err(_) => {
                tracing::warn!("no password hashing slot within the wait; shedding");
                Err(AppError::busy())
            }
        }
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Memory) -> Result<T, AppError> + Send + 'static,
    ) -> Result<T, AppError> {
        let permit = self.permit().await?;
        let hasher = self.clone();
        // The permit and the memory belong to the blocking task, not to the request: if the
        // request is cancelled (the client went away), the hash still runs to its end, and only
        // then are its permit and memory free again. Otherwise cancelled sign-ins would lift the
        // cap while their hashes kept running, and drop their memories.
        tokio::task::spawn_blocking(move || {
            // There are never more memories than permits; one lost to a panicking hash is made
            // again here.
            let mut memory = hasher.pool().pop().unwrap_or_default();
            let result = work(&mut memory);
            hasher.pool().push(memory);
            drop(permit);
            result
        })
        .await
        .map_err(|error| {
            tracing::error!(%error, "password hashing task failed");
            AppError::internal()
        })?
    }
}

/// Runs `argon2` over `memory`, grown to the block count its parameters need (and kept at that
/// size for the next hash).
fn compute(
    memory: &mut Memory,
    argon2: &Argon2<'_>,
    password: &[u8],
    salt: &[u8],
    out: &mut [u8],
) -> argon2::Result<()> {
    let blocks = argon2.params().block_count();
    if memory.len() < blocks {
        memory.resize(blocks, Block::default());
    }
    argon2.hash_password_into_with_memory(password, salt, out, &mut memory[..blocks])
}

/// What `PasswordHasher::hash_password` does, over a reused memory: a new random salt, and the
/// PHC string of the result.
fn hash_with(memory: &mut Memory, password: &[u8]) -> password_hash::Result<String> {
    let salt = Salt::generate();
    let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params());
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    compute(memory, &argon2, password, &salt, &mut out)?;
    Ok(PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(argon2.params())?,
        salt: Some(salt),
        hash: Some(Output::new(&out)?),
    }
    .to_string())
}

/// Whether a stored hash was made with today's algorithm, version and parameters: only then
/// is it kept after a successful sign-in. Hashes made by the argon2 crate's 0.5 releases with
/// these parameters are current (the PHC string is the same format).
fn is_current(phc: &str) -> bool {
    let Ok(stored) = PasswordHash::new(phc) else {
        return false;
    };
    let current = params();
    stored.algorithm == Algorithm::Argon2id.ident()
        && stored.version == Some(Version::V0x13.into())
        && Params::try_from(&stored).is_ok_and(|params| {
            params.m_cost() == current.m_cost()
                && params.t_cost() == current.t_cost()
                && params.p_cost() == current.p_cost()
                && params.output_len() == Some(Params::DEFAULT_OUTPUT_LEN)
        })
}

/// What `PasswordVerifier::verify_password` does, over a reused memory: recompute with the
/// stored hash's own algorithm, version, parameters and salt, then compare in constant time
/// (`Output`'s `PartialEq`). Hashes made with other parameters (say, before a cost increase)
/// still verify.
fn verify_with(memory: &mut Memory, password: &[u8], phc: &str) -> password_hash::Result<bool> {
    let stored = PasswordHash::new(phc)?;
    let (Some(salt), Some(expected)) = (&stored.salt, &stored.hash) else {
        return Err(password_hash::Error::EncodingInvalid);
    };
    let version = stored
        .version
        .map(Version::try_from)
        .transpose()?
        .unwrap_or_default();
    let argon2 = Argon2::new(
        Algorithm::try_from(stored.algorithm.as_str())?,
        version,
        Params::try_from(&stored)?,
    );
    let mut out = vec![0u8; expected.len()];
    compute(memory, &argon2, password, salt, &mut out)?;
    Ok(Output::new(&out)? == *expected)
}

#[cfg(test)]
mod tests {
    use argon2::{PasswordHasher, PasswordVerifier};

    use super::*;

    #[tokio::test]
    async fn hashes_verify_and_use_owasp_parameters() {
        let hasher = Hasher::new().await.unwrap();
        let phc = hasher.hash("correct horse battery".into()).await.unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(hasher
            .verify("correct horse battery".into(), phc.clone())
            .await
            .unwrap()
            .matched());
        assert!(!hasher
            .verify("correct horse batterz".into(), phc)
            .await
            .unwrap()
            .matched());
        assert!(!hasher
            .verify("x".into(), "not a hash".into())
            .await
            .unwrap()
            .matched());
    }

    /// NIST SP 800-63B-4: the same characters, however encoded, are the same password; and a hash
    /// made from the password as typed, before normalisation, still matches, and says so.
    #[tokio::test]
    async fn passwords_are_normalised_and_old_hashes_still_match() {
        let hasher = Hasher::new().await.unwrap();
        let composed = "crème brûlée à la carte";
        let decomposed = "cre\u{300}me bru\u{302}le\u{301}e a\u{300} la carte";
        let phc = hasher.hash(decomposed.into()).await.unwrap();
        assert_eq!(
            hasher.verify(composed.into(), phc.clone()).await.unwrap(),
            Match::Yes
        );
        assert_eq!(
            hasher.verify(decomposed.into(), phc).await.unwrap(),
            Match::Yes
        );
        let fullwidth = hasher
            .hash("ｐａｓｓｗｏｒｄ ｏｆ ｍｉｎｅ".into())
            .await
            .unwrap();
        assert_eq!(
            hasher
                .verify("password of mine".into(), fullwidth)
                .await
                .unwrap(),
            Match::Yes
        );

        // What the hasher stored before: the bytes as typed.
        let salt = Salt::generate();
        let old = Argon2::new(Algorithm::Argon2id, Version::V0x13, params())
            .hash_password_with_salt(decomposed.as_bytes(), &salt)
            .unwrap()
            .to_string();
        assert_eq!(
            hasher.verify(decomposed.into(), old.clone()).await.unwrap(),
            Match::AsTyped
        );
        assert_eq!(
            hasher.verify(composed.into(), old.clone()).await.unwrap(),
            Match::No
        );
        assert_eq!(
            hasher.verify("cre\u{300}me".into(), old).await.unwrap(),
            Match::No
        );
    }

    /// A hash made by the argon2 crate's 0.5 releases (what Signoff stored before 0.6: this one
    /// was made by argon2 0.5.3 with today's parameters) verifies and is current: no rehash.
    #[tokio::test]
    async fn hashes_made_by_argon2_0_5_verify_and_are_kept() {
        const MADE_BY_0_5: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2l4dGVlbiBieXRlIHNsdA$\
                                   k81ovk8fkH1PorA/36zCkEKia28tQyMQYijfaS5RQy4";
        let hasher = Hasher::new().await.unwrap();
        assert_eq!(
            hasher
                .verify("correct horse battery staple".into(), MADE_BY_0_5.into())
                .await
                .unwrap(),
            Match::Yes
        );
        assert_eq!(
            hasher
                .verify("correct horse battery stapler".into(), MADE_BY_0_5.into())
                .await
                .unwrap(),
            Match::No
        );
        assert!(is_current(MADE_BY_0_5));
        let ours = hasher.hash("anything at all here".into()).await.unwrap();
        assert!(is_current(&ours));
    }

    /// The reused-memory code must agree with the argon2 crate's own `hash_password` and
    /// `verify_password`, both ways, including hashes made with other parameters.
    #[tokio::test]
    async fn agrees_with_the_argon2_crate_both_ways() {
        let hasher = Hasher::new().await.unwrap();
        let ours = hasher
            .hash("a passphrase of some length".into())
            .await
            .unwrap();
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(Argon2::default()
            .verify_password(b"a passphrase of some length", &parsed)
            .is_ok());
        assert!(Argon2::default()
            .verify_password(b"a passphrase of some lengtH", &parsed)
            .is_err());

        let cheaper = Params::new(4096, 3, 1, Some(24)).unwrap();
        for (algorithm, version) in [
            (Algorithm::Argon2id, Version::V0x13),
            (Algorithm::Argon2i, Version::V0x13),
            (Algorithm::Argon2id, Version::V0x10),
        ] {
            let salt = Salt::generate();
            let theirs = Argon2::new(algorithm, version, cheaper.clone())
                .hash_password_with_salt(b"another passphrase", &salt)
                .unwrap()
                .to_string();
            // Other parameters than today's: it matches, and asks to be replaced.
            assert_eq!(
                hasher
                    .verify("another passphrase".into(), theirs.clone())
                    .await
                    .unwrap(),
                Match::Outdated,
                "{theirs}"
            );
            assert!(!hasher
                .verify("another passphrasE".into(), theirs.clone())
                .await
                .unwrap()
                .matched());
            // A stored hash whose output was cut short must not verify.
            let (head, tail) = theirs.rsplit_once('$').unwrap();
            let truncated = format!("{head}${}", &tail[..tail.len() - 4]);
            assert!(!hasher
                .verify("another passphrase".into(), truncated)
                .await
                .unwrap()
                .matched());
        }
    }

    /// However many hashes run, there are never more working memories than permits.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn working_memory_is_reused_not_reallocated() {
        let hasher = Hasher::new().await.unwrap();
        let permits = hasher.permits.available_permits();
        let phc = hasher
            .hash("the same passphrase again".into())
            .await
            .unwrap();
        let runs = (0..4 * permits).map(|_| {
            let (hasher, phc) = (hasher.clone(), phc.clone());
            tokio::spawn(async move {
                hasher
                    .verify("the same passphrase again".into(), phc)
                    .await
                    .unwrap()
                    .matched()
            })
        });
        for run in futures::future::join_all(runs).await {
            assert!(run.unwrap());
        }
        let memories = hasher.pool().len();
        assert!(
            memories >= 1 && memories <= permits,
            "{memories} memories, {permits} permits"
        );
        assert!(hasher
            .pool()
            .iter()
            .all(|memory| memory.len() == MEMORY_KIB as usize));
    }

    /// A cancelled request does not cancel its hash: until the hash is done, its permit stays
    /// taken (the cap holds) and its memory comes back to the pool afterwards. The "hashes" here
    /// run until the test lets them finish, so nothing depends on how long a real one takes.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn cancelled_requests_keep_the_cap_until_their_hashes_finish() {
        let hasher = Hasher::new().await.unwrap();
        let permits = hasher.permits.available_permits();
        let mut finish = Vec::new();
        let requests: Vec<_> = (0..permits)
            .map(|_| {
                let (done, wait) = std::sync::mpsc::channel::<()>();
                finish.push(done);
                let hasher = hasher.clone();
                tokio::spawn(async move {
                    hasher
                        .run(move |memory| {
                            // Marks the memory as used, then works until told to stop.
                            memory.resize(1, Block::default());
                            let _ = wait.recv();
                            Ok(())
                        })
                        .await
                })
            })
            .collect();
        while hasher.permits.available_permits() > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        for request in &requests {
            request.abort();
        }
        // The requests are gone; their hashes are not, and still hold every permit.
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert_eq!(hasher.permits.available_permits(), 0);
        drop(finish);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while hasher.permits.available_permits() < permits {
            assert!(
                std::time::Instant::now() < deadline,
                "permits never came back"
            );
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        assert_eq!(hasher.pool().len(), permits, "no memory was lost");
        assert!(hasher.pool().iter().all(|memory| !memory.is_empty()));
    }
}
