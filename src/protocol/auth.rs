//! Node authentication by HMAC challenge–response: the secret never crosses the wire.
//!
//! When the topology sets `CLUSTER_SECRET`, a peer starts with `hello` and a random nonce. The
//! coordinator answers `challenge` with a nonce of its own and a proof over the peer's nonce,
//! which shows the peer it talks to a coordinator that knows the secret. The peer answers `auth`
//! with a proof over the coordinator's nonce and its own name. A proof is
//! `hex(HMAC-SHA256(secret, label ‖ 0 ‖ nonce ‖ 0 ‖ name))`; the labels differ for the two sides,
//! so one side's proof can never be replayed as the other's. Fresh nonces make every proof
//! single-use.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// Label of the proof a peer sends.
pub const PEER: &str = "tcluster-peer";
/// Label of the proof the coordinator sends.
pub const COORDINATOR: &str = "tcluster-coordinator";

fn mac(secret: &str, label: &str, nonce: &str, name: &str) -> Hmac<Sha256> {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    for part in [label, nonce, name] {
        mac.update(part.as_bytes());
        mac.update(&[0]);
    }
    mac
}

/// The proof that whoever sends it knows `secret`.
pub fn proof(secret: &str, label: &str, nonce: &str, name: &str) -> String {
    hex::encode(mac(secret, label, nonce, name).finalize().into_bytes())
}

/// Checks a proof in constant time.
pub fn verify(secret: &str, label: &str, nonce: &str, name: &str, proof_hex: &str) -> bool {
    match hex::decode(proof_hex) {
        Ok(bytes) => mac(secret, label, nonce, name).verify_slice(&bytes).is_ok(),
        Err(_) => false,
    }
}

/// A fresh random nonce (128 bits, hex) from the operating system's generator.
pub fn nonce() -> String {
    let bytes: [u8; 16] = rand::random();
    hex::encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proofs_check_and_do_not_cross_over() {
        let p = proof("s3cret", PEER, "n1", "worker-1");
        assert!(verify("s3cret", PEER, "n1", "worker-1", &p));
        assert!(!verify("wrong", PEER, "n1", "worker-1", &p));
        assert!(!verify("s3cret", PEER, "n2", "worker-1", &p));
        assert!(!verify("s3cret", PEER, "n1", "worker-2", &p));
        assert!(!verify("s3cret", COORDINATOR, "n1", "worker-1", &p));
        assert!(!verify("s3cret", PEER, "n1", "worker-1", "not hex"));
        assert_ne!(nonce(), nonce());
    }
}
