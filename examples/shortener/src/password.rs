//! Password links: Argon2id hashes in the PHC string format.
//!
//! Hashing and checking take tens of milliseconds by design, so both run on
//! keel's blocking pool, never on a worker.

use crate::api::ApiError;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use keel::StatusCode;

/// The PHC string of `password` with a fresh random salt and Argon2id's
/// default parameters (19 MiB, 2 passes: OWASP's minimum).
///
/// # Errors
///
/// `500 internal` when hashing fails (it does not for valid parameters).
pub fn hash(password: &str) -> Result<String, ApiError> {
    let mut random = [0u8; 16];
    getrandom::fill(&mut random).map_err(|e| internal(format!("no random source: {e}")))?;
    let salt = SaltString::encode_b64(&random).map_err(|e| internal(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| internal(format!("hashing failed: {e}")))
}

fn internal(message: String) -> ApiError {
    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
}

/// Whether `password` matches the PHC string `hash`; a malformed hash
/// matches nothing.
pub fn verify(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash)
        .map(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    #[test]
    fn hashes_verify_and_are_salted() {
        let a = super::hash("correct horse").unwrap();
        let b = super::hash("correct horse").unwrap();
        assert!(a.starts_with("$argon2id$"));
        assert_ne!(a, b);
        assert!(super::verify("correct horse", &a));
        assert!(!super::verify("battery staple", &a));
        assert!(!super::verify("correct horse", "not a hash"));
    }
}
