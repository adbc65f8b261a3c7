//! Generated slugs: short, random-looking and unpredictable.

use crate::validate::is_reserved;

/// Length of a generated slug: 62^7 ≈ 3.5e12 possibilities, so a store of
/// millions of links rarely sees a collision, and the store retries when it
/// does.
pub const GENERATED_LEN: usize = 7;

const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// A fresh random slug of [`GENERATED_LEN`] base-62 characters from the
/// operating system's random source, never a reserved word.
///
/// # Panics
///
/// When the operating system has no random source.
pub fn generate() -> String {
    loop {
        let mut slug = String::with_capacity(GENERATED_LEN);
        let mut random = [0u8; 32];
        getrandom::fill(&mut random).expect("the operating system's random source");
        // Rejection sampling keeps every character equally likely: bytes at
        // or above 248 (4 * 62) would favour the first characters.
        for &b in random.iter().filter(|&&b| b < 248) {
            slug.push(ALPHABET[usize::from(b % 62)] as char);
            if slug.len() == GENERATED_LEN {
                break;
            }
        }
        if slug.len() == GENERATED_LEN && !is_reserved(&slug) {
            return slug;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn generated_slugs_are_valid_and_distinct() {
        let slugs: HashSet<String> = (0..10_000).map(|_| generate()).collect();
        assert_eq!(slugs.len(), 10_000);
        for slug in &slugs {
            assert_eq!(slug.len(), GENERATED_LEN);
            crate::validate::slug(slug).unwrap();
        }
        // Every character of the alphabet shows up somewhere.
        let seen: HashSet<u8> = slugs.iter().flat_map(|s| s.bytes()).collect();
        assert_eq!(seen.len(), 62);
    }
}
