//! Held links (`hold A B`): each message waits, in order, for the operator to deliver it (in
//! any order), drop it, or release the link.

use std::sync::Arc;

use bytes::Bytes;
use tokio::time::Instant;

use super::tap::peek;
use super::{Fate, LinkShaper};

/// A message waiting on a held link.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct HeldMessage {
    /// Its number, to deliver or drop it by.
    pub id: u64,
    pub from: Arc<str>,
    pub to: Arc<str>,
    /// Its `type`.
    pub kind: String,
    pub clock: Option<u64>,
    /// When it was held (shaper milliseconds).
    pub at_ms: u64,
    /// Its first characters.
    pub preview: String,
}

/// A held message and the connection it goes out on.
pub(super) struct Held {
    message: HeldMessage,
    line: Bytes,
    out: super::Outgoing,
}

impl LinkShaper {
    /// Holds a message of a held link until the operator says.
    pub(super) fn keep_held(
        &self,
        names: &(Arc<str>, Arc<str>),
        line: Bytes,
        out: &super::Outgoing,
    ) {
        let (kind, clock) = peek(&line);
        let kind = kind.into_owned();
        let preview: String = String::from_utf8_lossy(&line).chars().take(120).collect();
        let message = HeldMessage {
            id: self
                .next_held
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            from: names.0.clone(),
            to: names.1.clone(),
            kind,
            clock,
            at_ms: self.started.elapsed().as_millis() as u64,
            preview,
        };
        self.tap(names, &line, Fate::Held);
        if let Some(news) = self.held_news.get() {
            let _ = news.send(message.clone());
        }
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        held.push(Held {
            message,
            line,
            out: out.clone(),
        });
    }

    /// Holds the link between `a` and `b` (both ways, or only `a` → `b`): its messages wait.
    pub fn hold(&self, a: &str, b: &str, one_way: bool) {
        self.update(|(from, to), state| {
            if (from == a && to == b) || (!one_way && from == b && to == a) {
                state.held = true;
            }
        });
        // A direction not yet shaped (no message so far) is held from its first message.
        let mut links = self.write();
        links
            .entry((a.to_string(), b.to_string()))
            .or_default()
            .held = true;
        if !one_way {
            links
                .entry((b.to_string(), a.to_string()))
                .or_default()
                .held = true;
        }
    }

    /// Releases held links (those between `a` and `b`, or every one): what waits is delivered,
    /// in order. Returns how many.
    pub fn release(&self, a: Option<&str>, b: Option<&str>) -> usize {
        let hit = |from: &str, to: &str| match (a, b) {
            (Some(a), Some(b)) => (from == a && to == b) || (from == b && to == a),
            (Some(a), None) => from == a || to == a,
            _ => true,
        };
        self.update(|(from, to), state| {
            if hit(from, to) {
                state.held = false;
            }
        });
        self.deliver_waiting(hit) + self.nodes.release(hit)
    }

    /// Delivers, in order, what waits on the direction `from` → `to` (its launcher released it).
    pub(super) fn release_direction(&self, from: &str, to: &str) -> usize {
        self.deliver_waiting(|f, t| f == from && t == to)
    }

    /// Delivers what waits on the directions `hit` picks, in order. Returns how many.
    fn deliver_waiting(&self, hit: impl Fn(&str, &str) -> bool) -> usize {
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        let (go, stay): (Vec<Held>, Vec<Held>) = std::mem::take(&mut *held)
            .into_iter()
            .partition(|h| hit(&h.message.from, &h.message.to));
        *held = stay;
        drop(held);
        let count = go.len();
        for h in go {
            self.hand_on(h, false);
        }
        count
    }

    /// Sends a held message on, and says what became of it: delivered, or lost with its
    /// connection (false).
    fn hand_on(&self, h: Held, out_of_order: bool) -> bool {
        let names = (h.message.from.clone(), h.message.to.clone());
        let line = h.line.clone();
        let sent = h.out.send(vec![(Instant::now(), h.line)]);
        let fate = if sent {
            Fate::Delivered { out_of_order }
        } else {
            Fate::Dropped
        };
        self.tap(&names, &line, fate);
        sent
    }

    /// Messages waiting on held links, in the order they came.
    pub fn held(&self) -> Vec<HeldMessage> {
        let mut all: Vec<HeldMessage> = {
            let held = self.held.lock().unwrap_or_else(|e| e.into_inner());
            held.iter().map(|h| h.message.clone()).collect()
        };
        all.extend(self.held_by_nodes());
        all.sort_by_key(|m| m.id);
        all
    }

    /// Delivers held message `id` now, ahead of any that waited before it on its link.
    pub fn deliver_held(&self, id: u64) -> Result<HeldMessage, String> {
        if let Some(message) = self.settle_in_node(id, "deliver") {
            return Ok(message);
        }
        let h = self.take_held(id)?;
        let out_of_order = self
            .held
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .any(|o| {
                o.message.from == h.message.from
                    && o.message.to == h.message.to
                    && o.message.id < id
            });
        let message = h.message.clone();
        if !self.hand_on(h, out_of_order) {
            return Err(format!(
                "#{id}'s connection is closed: {} {} → {} is lost",
                message.kind, message.from, message.to
            ));
        }
        Ok(message)
    }

    /// Drops held message `id`.
    pub fn discard_held(&self, id: u64) -> Result<HeldMessage, String> {
        if let Some(message) = self.settle_in_node(id, "discard") {
            return Ok(message);
        }
        let h = self.take_held(id)?;
        let names = (h.message.from.clone(), h.message.to.clone());
        self.tap(&names, &h.line, Fate::Discarded);
        Ok(h.message)
    }

    fn take_held(&self, id: u64) -> Result<Held, String> {
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        let at = held
            .iter()
            .position(|h| h.message.id == id)
            .ok_or_else(|| format!("no held message #{id}"))?;
        Ok(held.remove(at))
    }
}
