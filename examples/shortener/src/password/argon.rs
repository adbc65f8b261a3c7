//! Argon2id on working memory the calling thread keeps, so that memory is
//! one buffer per thread however many passwords are checked.
//!
//! `argon2`'s own `hash_password` and `verify_password` allocate their
//! 19 MiB afresh each time; freed blocks that size stay in the allocator's
//! arenas, and with many threads hashing at once the process grew by
//! gigabytes that it kept. Here a [`Memory`] is filled in place with
//! `hash_password_into_with_memory`, and the PHC string is built and read
//! with `argon2`'s own types: the same format its `verify_password` reads.

use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};

/// Most memory, in KiB, a stored hash may ask for (the default is 19 MiB):
/// a hash asking for more matches nothing rather than taking it.
pub const MAX_MEMORY_KIB: u32 = 64 * 1024;
/// Most passes a stored hash may ask for (the default is 2).
pub const MAX_PASSES: u32 = 8;
/// Most lanes a stored hash may ask for (the default is 1).
pub const MAX_LANES: u32 = 4;
/// Longest hash output read from a stored PHC string (the default is 32).
const MAX_OUTPUT: usize = 64;

/// Argon2's working memory, kept between operations by one thread.
#[derive(Default)]
pub struct Memory {
    blocks: Vec<Block>,
}

impl Memory {
    /// The first `count` blocks, grown once to the largest count asked.
    fn blocks(&mut self, count: usize) -> &mut [Block] {
        if self.blocks.len() < count {
            self.blocks.resize(count, Block::default());
        }
        &mut self.blocks[..count]
    }
}

/// Why hashing failed (it does not with the default parameters).
#[derive(Debug, thiserror::Error)]
pub enum HashError {
    #[error("no random source: {0}")]
    Random(getrandom::Error),
    #[error("argon2: {0}")]
    Argon2(argon2::Error),
    #[error("PHC string: {0}")]
    Phc(argon2::password_hash::Error),
}

/// The PHC string of `password` with a fresh random salt and Argon2id's
/// default parameters (19 MiB, 2 passes: OWASP's minimum).
///
/// # Errors
///
/// When the random source or Argon2 fails.
pub fn hash(password: &str, memory: &mut Memory) -> Result<String, HashError> {
    let mut random = [0u8; 16];
    getrandom::fill(&mut random).map_err(HashError::Random)?;
    let params = Params::default();
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
        .hash_password_into_with_memory(
            password.as_bytes(),
            &random,
            &mut out,
            memory.blocks(params.block_count()),
        )
        .map_err(HashError::Argon2)?;
    let salt = SaltString::encode_b64(&random).map_err(HashError::Phc)?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params).map_err(HashError::Phc)?,
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(&out).map_err(HashError::Phc)?),
    };
    Ok(phc.to_string())
}

/// Whether `password` matches the PHC string `phc`, compared in constant
/// time. A malformed hash, or one asking for more than [`MAX_MEMORY_KIB`],
/// [`MAX_PASSES`] or [`MAX_LANES`], matches nothing.
pub fn verify(password: &str, phc: &str, memory: &mut Memory) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    let Ok(algorithm) = Algorithm::try_from(parsed.algorithm) else {
        return false;
    };
    let version = match parsed.version.map(Version::try_from) {
        None => Version::default(),
        Some(Ok(version)) => version,
        Some(Err(_)) => return false,
    };
    let Ok(params) = Params::try_from(&parsed) else {
        return false;
    };
    if params.m_cost() > MAX_MEMORY_KIB
        || params.t_cost() > MAX_PASSES
        || params.p_cost() > MAX_LANES
    {
        return false;
    }
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        return false;
    };
    let mut salt_bytes = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_bytes) else {
        return false;
    };
    let len = expected.len();
    if len > MAX_OUTPUT {
        return false;
    }
    let mut out = [0u8; MAX_OUTPUT];
    let blocks = params.block_count();
    let computed = Argon2::new(algorithm, version, params).hash_password_into_with_memory(
        password.as_bytes(),
        salt,
        &mut out[..len],
        memory.blocks(blocks),
    );
    // `Output`'s equality is constant-time.
    computed.is_ok() && Output::new(&out[..len]).is_ok_and(|out| out == expected)
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::password_hash::{PasswordHasher, PasswordVerifier};

    #[test]
    fn hashes_verify_are_salted_and_read_the_crates_own_format() {
        let mut memory = Memory::default();
        let a = hash("correct horse", &mut memory).unwrap();
        let b = hash("correct horse", &mut memory).unwrap();
        assert!(a.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{a}");
        assert_ne!(a, b);
        assert!(verify("correct horse", &a, &mut memory));
        assert!(!verify("battery staple", &a, &mut memory));
        assert!(!verify("correct horse", "not a hash", &mut memory));
        // Hashes stored before (made by `hash_password`) still verify, and
        // the crate's verifier reads ours.
        let salt = SaltString::encode_b64(b"sixteen byte slt").unwrap();
        let old = Argon2::default()
            .hash_password(b"pw", &salt)
            .unwrap()
            .to_string();
        assert!(verify("pw", &old, &mut memory));
        assert!(!verify("pW", &old, &mut memory));
        let ours = PasswordHash::new(&a).unwrap();
        assert!(Argon2::default()
            .verify_password(b"correct horse", &ours)
            .is_ok());
        // The buffer is the default's size, reused.
        assert_eq!(memory.blocks.len(), 19 * 1024);
    }

    #[test]
    fn hashes_asking_for_too_much_match_nothing() {
        let mut memory = Memory::default();
        let salt = SaltString::encode_b64(b"sixteen byte slt").unwrap();
        let costly = |m: u32, t: u32, p: u32| {
            let params = Params::new(m, t, p, None).unwrap();
            Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
                .hash_password(b"pw", &salt)
                .unwrap()
                .to_string()
        };
        assert!(verify("pw", &costly(64, 1, 1), &mut memory));
        assert!(!verify("pw", &costly(64, MAX_PASSES + 1, 1), &mut memory));
        assert!(!verify("pw", &costly(64, 1, MAX_LANES + 1), &mut memory));
        // Not computed: a cheap check on the parameters refuses it first.
        let huge = costly(64, 1, 1).replace("m=64", "m=4000000");
        assert!(!verify("pw", &huge, &mut memory));
        assert!(memory.blocks.len() < 1024);
    }
}
