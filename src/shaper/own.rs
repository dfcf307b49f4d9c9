//! A node's own links: a node of tcluster's own, in a process of its own, applies the faults of
//! its links itself, by the same rules a proxy applies, so that its messages cross the loopback
//! once and the launcher carries none of them.
//!
//! ```text
//!   worker-1 process                                       coordinator process
//!   ┌──────────────────────────────────────────┐
//!   │ driver ──dial──▶ pipe in memory ──▶ shaper ├──TCP──▶ listener
//!   │                                    │     │
//!   └────────────────────────────────────┼─────┘
//!          stdin: link / deliver / discard│ stdout: LINK {"seen":…} / LINK {"held":…}
//!                                 launcher (the console, a headless run)
//! ```
//!
//! The node is started with `--shape-links SEED` and told its servers' own addresses; a dial to
//! one of them ([`crate::tls::route`]) opens a pipe in memory whose far end this shaper carries
//! on to the server, both ways through the link's faults, exactly as a proxy would (TLS on the
//! far side where the server is encrypted). Its links start as the topology declares them; the
//! launcher then says every change on the node's control channel, as whole rules for one
//! direction:
//!
//! ```text
//! link worker-1 coordinator cut=1 held=0 latency_us=0 jitter_us=0 loss=0 bandwidth=-
//! deliver 7
//! discard 8
//! ```
//!
//! and the node says what its links carried on its stdout, as the proxies' tap would (`LINK
//! {"seen":{…}}`, grouped by burst), and each message a held link keeps (`LINK
//! {"held":{…}}`, numbered by the node: the launcher renumbers them).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use rand::SeedableRng;
use rand::rngs::SmallRng;
use tokio::net::UdpSocket;

use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

use super::{Dial, HeldMessage, LinkShaper, LinkState, MessageSeen};
use crate::topology::Link;
use crate::topology::units::{Percent, Rate};

/// One direction's rules: its link (latency, jitter, bandwidth, loss), whether it is cut, and
/// whether it is held.
pub type Rules = (Link, bool, bool);

/// What a node says about its links on its stdout, after [`REPORT_PREFIX`]. Its `at_ms` is an
/// age: how many milliseconds before the line was written.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Report {
    /// Messages a link carried, dropped or held (one, or a burst of one kind).
    Seen(MessageSeen),
    /// A message a held link keeps, by the node's own number.
    Held(HeldMessage),
}

/// How often at most a node reports on its links: what its links carry in that time goes in one
/// write, messages of a kind as one line.
pub const REPORT_EVERY: Duration = Duration::from_millis(25);

/// Counts `seen` into `batch`: with the messages of its link, kind and fate there already (the
/// earliest time, the latest clock), else as a line of its own.
fn gather(batch: &mut Vec<MessageSeen>, seen: MessageSeen) {
    match batch.iter_mut().find(|b| {
        b.fate == seen.fate && b.kind == seen.kind && b.from == seen.from && b.to == seen.to
    }) {
        Some(b) => {
            b.count = b.count.saturating_add(seen.count);
            b.clock = b.clock.max(seen.clock);
            b.at_ms = b.at_ms.min(seen.at_ms);
        }
        None => batch.push(seen),
    }
}

/// How a node's line about its links begins.
pub const REPORT_PREFIX: &str = "LINK ";

/// A node's part of its shaper's seed: each node's links lose different messages.
pub fn name_seed(name: &str) -> u64 {
    // FNV-1a: stable from one run to the next, unlike the standard library's hasher.
    name.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The rules of one direction as a control line (`link FROM TO cut=… …`).
pub fn rules_line(from: &str, to: &str, state: &LinkState) -> String {
    let link = &state.link;
    let bandwidth = link
        .bandwidth
        .map_or_else(|| "-".to_string(), |r| r.0.to_string());
    format!(
        "link {from} {to} cut={} held={} latency_us={} jitter_us={} loss={} bandwidth={bandwidth}",
        u8::from(state.cut),
        u8::from(state.held),
        link.latency.as_micros(),
        link.jitter.as_micros(),
        link.loss.0,
    )
}

/// A `link FROM TO …` line's two ends and its rules (link, cut, held); `None` if it is not a
/// `link` line.
pub fn parse_link_line(line: &str) -> Option<(&str, &str, Result<Rules, String>)> {
    let mut words = line.split_whitespace();
    if words.next()? != "link" {
        return None;
    }
    let (Some(from), Some(to)) = (words.next(), words.next()) else {
        return Some(("", "", Err(format!("`{line}` names no link"))));
    };
    let rules: Vec<&str> = words.collect();
    Some((from, to, parse_rules(&rules)))
}

/// The rules a `link` line's words after `FROM TO` give: the link, cut, held.
fn parse_rules(words: &[&str]) -> Result<Rules, String> {
    let mut link = Link::default();
    let (mut cut, mut held) = (false, false);
    for word in words {
        let (key, value) = word
            .split_once('=')
            .ok_or_else(|| format!("`{word}` is not key=value"))?;
        let bad = || format!("bad {key} `{value}`");
        let flag = |v: &str| match v {
            "0" => Ok(false),
            "1" => Ok(true),
            _ => Err(bad()),
        };
        let micros = |v: &str| {
            v.parse::<u64>()
                .map(Duration::from_micros)
                .map_err(|_| bad())
        };
        match key {
            "cut" => cut = flag(value)?,
            "held" => held = flag(value)?,
            "latency_us" => link.latency = micros(value)?,
            "jitter_us" => link.jitter = micros(value)?,
            "loss" => match value.parse::<f64>() {
                Ok(p) if (0.0..=100.0).contains(&p) => link.loss = Percent(p),
                _ => return Err(bad()),
            },
            "bandwidth" if value == "-" => link.bandwidth = None,
            "bandwidth" => match value.parse::<u64>() {
                Ok(bps) if bps > 0 => link.bandwidth = Some(Rate(bps)),
                _ => return Err(bad()),
            },
            _ => return Err(format!("unknown rule `{key}`")),
        }
    }
    Ok((link, cut, held))
}

/// The links this process shapes itself, for its datagrams.
struct Own {
    shaper: LinkShaper,
    me: Arc<str>,
    rng: Mutex<SmallRng>,
    /// Where shaped datagrams leave from (opened on the first).
    socket: tokio::sync::OnceCell<Option<Arc<UdpSocket>>>,
}

static OWN: OnceLock<Own> = OnceLock::new();

/// Sends a heartbeat datagram to `peer` from `socket`: as it is, unless this process shapes its
/// link to the server at `peer` ([`LinkShaper::own_links`]), which then cuts, loses or delays it
/// as a proxy would (a held link drops it: a heartbeat delivered by hand later would be stale).
pub async fn send_datagram(
    socket: &UdpSocket,
    datagram: &[u8],
    peer: SocketAddr,
) -> std::io::Result<()> {
    let Some(own) = OWN.get() else {
        return socket.send_to(datagram, peer).await.map(drop);
    };
    let Some(server) = own.shaper.server_at(peer) else {
        return socket.send_to(datagram, peer).await.map(drop);
    };
    let key = (own.me.to_string(), server.clone());
    let names: (Arc<str>, Arc<str>) = (own.me.clone(), Arc::from(server.as_str()));
    let delay = {
        let mut rng = own.rng.lock().unwrap_or_else(|e| e.into_inner());
        own.shaper.pass_datagram(&key, &names, datagram, &mut rng)
    };
    let Some(delay) = delay else {
        return Ok(());
    };
    let out = own
        .socket
        .get_or_init(|| async { UdpSocket::bind("127.0.0.1:0").await.ok().map(Arc::new) })
        .await;
    match out {
        Some(out) => super::send_after(out, datagram, peer, delay).await,
        None => socket.send_to(datagram, peer).await.map(drop),
    }
}

impl LinkShaper {
    /// The server this shaper's links reach at `addr`, if any.
    fn server_at(&self, addr: SocketAddr) -> Option<String> {
        self.addresses
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .find(|(_, a)| **a == addr)
            .map(|(name, _)| name.clone())
    }

    /// Shapes `me`'s links to `servers` (each a name and the address `me` was told) in this
    /// process: dials to those addresses go through this shaper from now on.
    pub fn own_links(&self, me: &str, servers: &[(String, String)]) -> Result<(), String> {
        let _ = OWN.set(Own {
            shaper: self.clone(),
            me: Arc::from(me),
            rng: Mutex::new(SmallRng::seed_from_u64(self.seed ^ 0x0da7_a6a0)),
            socket: tokio::sync::OnceCell::new(),
        });
        let names: Vec<&str> = servers.iter().map(|(name, _)| name.as_str()).collect();
        tracing::info!("shaping its own links to {}", names.join(", "));
        for (server, told) in servers {
            let addr: SocketAddr = told
                .parse()
                .map_err(|_| format!("the address of {server}, `{told}`, is not host:port"))?;
            self.set_address(server, addr);
            for (from, to) in [(me, server.as_str()), (server.as_str(), me)] {
                self.write()
                    .entry((from.to_string(), to.to_string()))
                    .or_default();
            }
            let (tx, mut rx) = mpsc::unbounded_channel();
            crate::tls::route(told, tx);
            let (shaper, me, server, told) =
                (self.clone(), me.to_string(), server.clone(), told.clone());
            tokio::spawn(async move {
                let mut n = 0u64;
                while let Some(far) = rx.recv().await {
                    n += 1;
                    let (shaper, me, server) = (shaper.clone(), me.clone(), server.clone());
                    let dial = Dial::Told(told.clone());
                    let near = crate::tls::Stream::Memory(far, None);
                    tokio::spawn(async move { shaper.carry(near, &me, &server, dial, n).await });
                }
            });
        }
        Ok(())
    }

    /// Writes what this process's links carry, and the messages its held links keep, to
    /// stdout for the launcher (`LINK …` lines), until the shaper stops: at most every
    /// [`REPORT_EVERY`], messages of one kind and fate on one link in that time as one line
    /// with their count, each stamped with its age (so the launcher dates it exactly).
    pub async fn report_on_stdout(self) {
        let mut seen = self.taps.subscribe();
        let (held_tx, mut held) = mpsc::unbounded_channel();
        let _ = self.held_news.set(held_tx);
        let mut out = tokio::io::BufWriter::new(tokio::io::stdout());
        let mut batch: Vec<MessageSeen> = Vec::new();
        let mut keeps: Vec<HeldMessage> = Vec::new();
        let mut text = String::new();
        loop {
            tokio::select! {
                _ = self.shutdown.cancelled() => return,
                s = seen.recv() => match s {
                    Ok(s) => gather(&mut batch, s),
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                    Err(_) => return,
                },
                h = held.recv() => match h {
                    Some(h) => keeps.push(h),
                    None => return,
                },
            }
            // What else comes in the next moments goes in the same write.
            tokio::time::sleep(REPORT_EVERY).await;
            while let Ok(s) = seen.try_recv() {
                gather(&mut batch, s);
            }
            while let Ok(h) = held.try_recv() {
                keeps.push(h);
            }
            let now = self.now();
            text.clear();
            let mut put = |report: &Report| {
                if let Ok(json) = serde_json::to_string(report) {
                    text.push_str(REPORT_PREFIX);
                    text.push_str(&json);
                    text.push('\n');
                }
            };
            for mut s in batch.drain(..) {
                s.at_ms = now.saturating_sub(s.at_ms);
                put(&Report::Seen(s));
            }
            for mut h in keeps.drain(..) {
                h.at_ms = now.saturating_sub(h.at_ms);
                put(&Report::Held(h));
            }
            if out.write_all(text.as_bytes()).await.is_err() || out.flush().await.is_err() {
                return;
            }
        }
    }

    /// Carries out a control line about this process's links (`link …`, `deliver ID`,
    /// `discard ID`); `None` if the line is about something else.
    pub fn obey(&self, line: &str) -> Option<Result<(), String>> {
        let words: Vec<&str> = line.split_whitespace().collect();
        let id = |text: &str| {
            text.parse::<u64>()
                .map_err(|_| format!("bad message number `{text}`"))
        };
        if let Some((from, to, rules)) = parse_link_line(line) {
            return Some(rules.map(|(link, cut, held)| {
                let released = {
                    let mut links = self.write();
                    let state = links.entry((from.to_string(), to.to_string())).or_default();
                    let released = state.held && !held;
                    state.link = link;
                    state.cut = cut;
                    state.held = held;
                    released
                };
                if released {
                    self.release_direction(from, to);
                }
            }));
        }
        Some(match words[..] {
            ["deliver", n] => id(n).and_then(|n| self.deliver_held(n).map(drop)),
            ["discard", n] => id(n).and_then(|n| self.discard_held(n).map(drop)),
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_go_out_as_a_line_and_come_back_the_same() {
        let state = LinkState {
            link: Link {
                latency: Duration::from_millis(120),
                jitter: Duration::from_micros(2500),
                loss: Percent(12.5),
                bandwidth: Some(Rate(9600)),
                ..Link::default()
            },
            cut: true,
            held: false,
            carried: 7,
            ..LinkState::default()
        };
        let line = rules_line("worker-1", "coordinator", &state);
        let words: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(words[..3], ["link", "worker-1", "coordinator"]);
        let (link, cut, held) = parse_rules(&words[3..]).expect("parses");
        assert_eq!((link, cut, held), (state.link.clone(), true, false));
        let none = LinkState::default();
        let words: Vec<String> = rules_line("a", "b", &none)
            .split_whitespace()
            .map(str::to_string)
            .collect();
        let words: Vec<&str> = words.iter().map(String::as_str).collect();
        assert_eq!(
            parse_rules(&words[3..]),
            Ok((Link::default(), false, false))
        );
    }

    #[test]
    fn a_bad_rule_is_refused_saying_which() {
        for (words, says) in [
            (&["cut=2"][..], "bad cut `2`"),
            (&["loss=101"][..], "bad loss `101`"),
            (&["latency_us=-1"][..], "bad latency_us `-1`"),
            (&["bandwidth=0"][..], "bad bandwidth `0`"),
            (&["speed=3"][..], "unknown rule `speed`"),
            (&["cut"][..], "`cut` is not key=value"),
        ] {
            assert_eq!(
                parse_rules(words).map(drop),
                Err(says.to_string()),
                "{words:?}"
            );
        }
    }
}
