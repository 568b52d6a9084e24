//! Secrets the deployer hands out (API tokens, session ids): 256 random bits each, kept only as
//! SHA-256 hashes. A fast hash is the right one here: there is nothing to brute-force in 256
//! random bits, and the store never holds anything a caller could send.

use base64::Engine as _;
use rand::RngCore as _;
use sha2::Digest as _;

/// API tokens start with this, so that a leaked one is recognisable (secret scanners).
pub const TOKEN_PREFIX: &str = "dpl_";
/// The name the bootstrap token's calls are audited as.
pub const BOOTSTRAP_NAME: &str = "bootstrap";

/// A new secret: the prefix and 256 random bits, URL-safe.
pub fn new_secret(prefix: &str) -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!(
        "{prefix}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

/// A short random id (not a secret).
pub fn random_id() -> String {
    let mut bytes = [0u8; 8];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The SHA-256 of a secret, hex: what the store keeps.
pub fn hash(secret: &str) -> String {
    sha2::Sha256::digest(secret.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_long_random_and_hashed_one_way() {
        let a = new_secret(TOKEN_PREFIX);
        let b = new_secret(TOKEN_PREFIX);
        assert!(a.starts_with("dpl_") && a.len() == 4 + 43, "{a}");
        assert_ne!(a, b);
        assert_eq!(hash(&a), hash(&a));
        assert_eq!(hash(&a).len(), 64);
        assert!(!hash(&a).contains(&a[4..]));
    }
}
