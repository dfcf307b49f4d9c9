//! Heartbeats over UDP (`policy heartbeat { transport udp }`): jobs and everything else stay on
//! each worker's TCP connection; only heartbeats travel as datagrams.
//!
//! A datagram has no connection to say who sent it, so each registration gets a token (in
//! `registered`), and a heartbeat datagram counts only if it names a worker connected now and
//! carries that worker's token. Anything else is dropped and counted (`refused.rules`): a
//! forged or stale datagram can neither keep a dead worker alive nor touch another's jobs.

use tracing::debug;

use super::Coordinator;
use crate::protocol::message::{Envelope, Message};
use crate::role::ConnId;

impl Coordinator {
    /// A token for worker `name`'s heartbeat datagrams, if they go over UDP (a classic worker
    /// heartbeats on its connection).
    pub(super) fn udp_token_for(&mut self, name: &str, classic: bool) -> Option<String> {
        if !self.config.heartbeat.udp || classic {
            self.udp_tokens.remove(name);
            return None;
        }
        let token = self.random_hex();
        self.udp_tokens.insert(name.to_string(), token.clone());
        Some(token)
    }

    /// A datagram: a worker's heartbeat with its token, or nothing.
    pub(super) fn datagram(&mut self, env: Envelope) {
        let Message::Heartbeat {
            running,
            token: Some(token),
        } = env.message
        else {
            self.refused.rules += 1;
            debug!(from = %env.from, "a datagram that is not a heartbeat: dropped");
            return;
        };
        let Some(conn) = self.heartbeat_conn(&env.from, &token) else {
            self.refused.rules += 1;
            debug!(from = %env.from, "a heartbeat datagram with no valid token: dropped");
            return;
        };
        if self.clock.observe(env.clock).is_err() {
            self.refused.clock += 1;
            return;
        }
        self.heard_from(&env.from, env.clock);
        self.heartbeat(conn, running);
    }

    /// The connection of worker `name`, if `token` is the one its registration was given.
    fn heartbeat_conn(&self, name: &str, token: &str) -> Option<ConnId> {
        let expected = self.udp_tokens.get(name)?;
        // Compared in full whatever the input: no early exit to time.
        let same = expected.len() == token.len()
            && expected
                .bytes()
                .zip(token.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0;
        same.then(|| self.worker_conns.get(name).copied()).flatten()
    }
}
