//! The handshake from both sides, fed arbitrary lines: a client proving a secret to a "server"
//! that says anything, and a server's challenger answering arbitrary `hello`/`auth`. Any panic,
//! and any success without the right proof, is a bug.
//!
//!     cargo fuzz run handshake

#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use tcluster::protocol::handshake::{Challenger, Proven, prove};
use tcluster::protocol::message::PeerRole;

fuzz_target!(|data: &[u8]| {
    // The client side: whatever the server says, no panic, and no success (the server below
    // cannot know the secret).
    let lines: Vec<Result<Bytes, std::io::Error>> = data
        .split(|b| *b == b'\n')
        .map(|l| Ok(Bytes::copy_from_slice(l)))
        .collect();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let proven = runtime.block_on(async {
        let mut stream = futures::stream::iter(lines);
        let mut sink = Vec::new();
        prove(&mut stream, &mut sink, "fuzz secret", "w", PeerRole::Worker).await
    });
    assert!(proven.is_err(), "proved to a server without the secret");

    // The server side: arbitrary names, roles, nonces and proofs never prove anything.
    let text = String::from_utf8_lossy(data);
    let mut parts = text.split('\0');
    let name = parts.next().unwrap_or_default().to_string();
    let nonce = parts.next().map(str::to_string);
    let proof = parts.next().unwrap_or_default();
    let role = match data.first().copied().unwrap_or(0) % 5 {
        0 => PeerRole::Worker,
        1 => PeerRole::Client,
        2 => PeerRole::Master,
        3 => PeerRole::ChatPeer,
        _ => PeerRole::Supervisor,
    };
    let mut challenger = Challenger::default();
    let _ = challenger.hello("server", "key", name, role, nonce, "00ff".into());
    let answer = challenger.check(Some("secret"), "peer key", proof);
    assert!(!matches!(answer, Proven::As(..)), "a guessed proof passed");
});
