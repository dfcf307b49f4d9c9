//! Golden transcripts of the coordinator state machine, with no sockets and made-up time.
//!
//! Each file in `tests/scripts/coordinator/` is a script; running it prints a transcript of
//! everything the coordinator said and did, which is compared with its snapshot. Commands:
//!
//! ```text
//! config KEY=VALUE …     before anything else: interval, suspect, timeout, classic_timeout (ms),
//!                        algorithm, max_attempts, backoff (ms), secret, user=NAME:PASSWORD,
//!                        allow_classic, max_connections, idle_timeout (ms), role=backup, sync,
//!                        rank=N, peer=NAME:RANK (another master), follow=NAME,
//!                        cluster=NAME, address=HOST:PORT, lending=THRESHOLD:MAX:IDLE:RETURN
//!                        (ms), peer_cluster=CLUSTER:MASTER (a master of another cluster)
//! connect N              connection N opens
//! close N                connection N closes
//! recv N {json}          a native message arrives on N
//! classic N LINE         a classic line arrives on N
//! auth N NAME            N answers its last challenge with a correct proof for NAME
//! peer N NAME ROLE       N proves it is NAME in ROLE (master, supervisor) with the peer secret:
//!                        `hello`, then `auth` with a correct proof
//! primary {json}         a backup's primary sends this          primary_lost   that link closed
//! master NAME {json}     master NAME replies to what was sent to it (`none`: no reply in time)
//! tick MS                MS milliseconds pass, then a tick
//! state                  prints jobs by state and each worker
//! ```
//!
//! To review changes: `INSTA_UPDATE=always cargo test --test coordinator_scripts`, then read the
//! diff of `tests/snapshots/`.

use std::fmt::Write;
use std::time::Duration;

use tcluster::protocol::message::{Envelope, Message};
use tcluster::protocol::{Dialect, auth, decode};
use tcluster::role::coordinator::{Coordinator, CoordinatorConfig, Input, JournalOp, Output};
use tcluster::topology::{Algorithm, User, UserRole};

fn configure(config: &mut CoordinatorConfig, args: &str) {
    for pair in args.split_whitespace() {
        let (key, value) = pair.split_once('=').expect("config takes KEY=VALUE");
        let ms = || Duration::from_millis(value.parse().expect("milliseconds"));
        match key {
            "interval" => config.heartbeat.interval = ms(),
            "suspect" => config.heartbeat.suspect_after = ms(),
            "timeout" => config.heartbeat.timeout = ms(),
            "classic_timeout" => config.classic_timeout = ms(),
            "udp" => config.heartbeat.udp = value == "true",
            "algorithm" => config.algorithm = Algorithm::parse(value).expect("algorithm"),
            "max_attempts" => config.retry.max_attempts = value.parse().unwrap(),
            "backoff" => config.retry.backoff = ms(),
            "secret" => config.secret = Some(value.to_string()),
            "allow_classic" => config.allow_classic = value == "true",
            "max_connections" => config.max_connections = value.parse().unwrap(),
            "idle_timeout" => config.idle_timeout = ms(),
            "role" => {
                config.role = if value == "backup" {
                    tcluster::topology::MasterRole::Backup
                } else {
                    tcluster::topology::MasterRole::Primary
                }
            }
            "sync" => config.sync = value == "true",
            "rank" => config.rank = value.parse().unwrap(),
            "peer" => {
                let (name, rank) = value.split_once(':').unwrap();
                config.peers.push(tcluster::role::coordinator::PeerMaster {
                    name: name.into(),
                    address: format!("{name}:0"),
                    rank: rank.parse().unwrap(),
                });
            }
            "follow" => config.follow = Some(value.to_string()),
            "cluster" => config.cluster = value.to_string(),
            "address" => config.address = Some(value.to_string()),
            "lending" => {
                let n: Vec<u64> = value.split(':').map(|v| v.parse().unwrap()).collect();
                config.lending = Some(tcluster::topology::Lending {
                    queue_threshold: n[0] as usize,
                    max_lend: n[1] as usize,
                    idle_before_lend: Duration::from_millis(n[2]),
                    return_after_idle: Duration::from_millis(n[3]),
                });
            }
            "clock" => {
                let n: Vec<u64> = value.split(':').map(|v| v.parse().unwrap()).collect();
                config.clock_sync = Some(tcluster::topology::ClockSync {
                    interval: Duration::from_millis(n[0]),
                    tolerance: Duration::from_millis(n[1]),
                    outlier: Duration::from_millis(n[2]),
                });
            }
            "bot" => config.bots.push(value.into()),
            "time_peer" => config
                .time_peers
                .push(tcluster::role::coordinator::PeerMaster {
                    name: value.into(),
                    address: format!("{value}:0"),
                    rank: 0,
                }),
            "peer_cluster" => {
                let (cluster, master) = value.split_once(':').unwrap();
                let peer = tcluster::role::coordinator::PeerMaster {
                    name: master.into(),
                    address: format!("{master}:0"),
                    rank: 0,
                };
                match config.clusters.iter_mut().find(|c| c.name == cluster) {
                    Some(c) => c.masters.push(peer),
                    None => config
                        .clusters
                        .push(tcluster::role::coordinator::PeerCluster {
                            name: cluster.into(),
                            masters: vec![peer],
                        }),
                }
            }
            "user" => {
                let (name, password) = value.split_once(':').unwrap();
                config.users.push(User {
                    name: name.into(),
                    password: password.into(),
                    role: UserRole::Student,
                });
            }
            other => panic!("unknown config key {other}"),
        }
    }
}

/// Runs a script and returns its transcript.
fn run(script: &str) -> String {
    let mut config = CoordinatorConfig::for_tests("coordinator");
    let mut coordinator: Option<Coordinator> = None;
    let mut now = 0;
    // The coordinator's wall clock is `wall_base + now` (moved by `wall N` and by its own
    // adjustments).
    let mut wall_base: i64 = 1_000_000;
    let mut transcript = String::new();
    let mut challenges: std::collections::HashMap<u64, String> = Default::default();
    // The heartbeat token each connection's registration was given (UDP heartbeats).
    let mut udp_tokens: std::collections::HashMap<u64, String> = Default::default();

    for line in script.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            transcript.push_str(line);
            transcript.push('\n');
            continue;
        }
        let (command, rest) = line.split_once(' ').unwrap_or((line, ""));
        if command == "config" {
            configure(&mut config, rest);
            writeln!(transcript, "> {line}").unwrap();
            continue;
        }
        let c = coordinator.get_or_insert_with(|| Coordinator::new(config.clone()));
        writeln!(transcript, "> {line}").unwrap();
        let conn_and_rest = || {
            let (conn, rest) = rest.split_once(' ').unwrap_or((rest, ""));
            (conn.parse::<u64>().expect("connection number"), rest)
        };
        let input = match command {
            "connect" => Input::Connected(conn_and_rest().0),
            "close" => Input::Disconnected(conn_and_rest().0),
            "recv" | "classic" => {
                let (conn, text) = conn_and_rest();
                let dialect = if command == "recv" {
                    Dialect::Native
                } else {
                    Dialect::Classic
                };
                match decode(dialect, text, "") {
                    Ok(env) => Input::Received(conn, dialect, env),
                    Err(e) => {
                        writeln!(transcript, "  (not decoded: {e})").unwrap();
                        continue;
                    }
                }
            }
            "peer" => {
                let (conn, rest) = conn_and_rest();
                let (name, role) = rest.split_once(' ').expect("peer N NAME ROLE");
                let hello = format!(r#"{{"type":"hello","from":"{name}","role":"{role}"}}"#);
                let hello = decode(Dialect::Native, &hello, "").expect("a hello");
                for output in c.step(now, Input::Received(conn, Dialect::Native, hello)) {
                    if let Output::Send(conn, env) = &output
                        && let Message::Challenge { nonce, .. } = &env.message
                    {
                        challenges.insert(*conn, nonce.clone());
                    }
                }
                let nonce = challenges
                    .get(&conn)
                    .expect("a challenge was sent (not held for a backup's acknowledgement)");
                let proof = auth::proof(&config.peer_key, auth::PEER, nonce, name);
                Input::Received(
                    conn,
                    Dialect::Native,
                    Envelope {
                        from: name.into(),
                        clock: 0,
                        term: None,
                        message: Message::Auth { proof },
                    },
                )
            }
            "auth" => {
                let (conn, name) = conn_and_rest();
                let nonce = challenges.get(&conn).expect("a challenge was sent");
                let proof = auth::proof(config.secret.as_deref().unwrap(), auth::PEER, nonce, name);
                Input::Received(
                    conn,
                    Dialect::Native,
                    Envelope {
                        from: Default::default(),
                        clock: 0,
                        term: None,
                        message: Message::Auth { proof },
                    },
                )
            }
            "primary" => Input::FromPrimary(
                decode(Dialect::Native, rest, "").expect("a message from the primary"),
            ),
            "primary_lost" => Input::PrimaryLost,
            // A heartbeat datagram from the worker registered on connection N, with its token
            // (`datagram N {…}`), or exactly as written (`datagram - {…}`).
            "datagram" => {
                let (conn, text) = rest.split_once(' ').expect("datagram N|- JSON");
                let mut env = decode(Dialect::Native, text, "").expect("a datagram");
                if let (Ok(conn), Message::Heartbeat { token, .. }) =
                    (conn.parse::<u64>(), &mut env.message)
                {
                    *token = udp_tokens.get(&conn).cloned();
                }
                Input::Datagram(env)
            }
            "master" => {
                let (master, text) = rest.split_once(' ').unwrap_or((rest, "none"));
                let reply = (text != "none")
                    .then(|| decode(Dialect::Native, text, "").expect("a master's reply"));
                Input::FromMaster {
                    master: master.to_string(),
                    reply,
                }
            }
            "tick" => {
                now += rest.parse::<u64>().expect("milliseconds");
                Input::Tick
            }
            "wall" => {
                wall_base = rest.parse::<i64>().expect("milliseconds") - now as i64;
                continue;
            }
            "state" => {
                let s = c.state();
                let counts = s.counts;
                writeln!(
                    transcript,
                    "  jobs: {} queued, {} assigned, {} running, {} completed, {} failed; {} duplicates",
                    counts.queued, counts.assigned, counts.running, counts.completed, counts.failed, s.duplicates
                )
                .unwrap();
                for (name, w) in &s.workers {
                    let running: Vec<String> = w.running.iter().map(|j| j.to_string()).collect();
                    writeln!(
                        transcript,
                        "  {name}: {} {}/{} slots, done {} [{}]",
                        w.health.as_str(),
                        w.running.len(),
                        w.slots,
                        w.done,
                        running.join(" ")
                    )
                    .unwrap();
                }
                continue;
            }
            other => panic!("unknown command {other}"),
        };
        c.set_wall_clock(wall_base + now as i64);
        for output in c.step(now, input) {
            match output {
                Output::AdjustClock(ms) => {
                    wall_base += ms;
                    writeln!(transcript, "  ⟲ own clock moves {ms}ms").unwrap()
                }
                Output::Send(conn, env) => {
                    if let Message::Challenge { nonce, .. } = &env.message {
                        challenges.insert(conn, nonce.clone());
                    }
                    if let Message::Registered {
                        udp_token: Some(token),
                        ..
                    } = &env.message
                    {
                        udp_tokens.insert(conn, token.clone());
                    }
                    let body = serde_json::to_string(&env.message).unwrap();
                    // Random values (nonces, tokens, proofs) differ by seed: show their shape only.
                    let body = mask_hex(&body);
                    writeln!(transcript, "  → {conn} c{} {body}", env.clock).unwrap();
                }
                Output::Close(conn) => writeln!(transcript, "  ✕ close {conn}").unwrap(),
                Output::Follow { primary, reset } => {
                    let from = if reset { " from the first event" } else { "" };
                    writeln!(transcript, "  ⇢ follow {primary}{from}").unwrap()
                }
                Output::ToMaster {
                    master,
                    envelope,
                    wait,
                } => writeln!(
                    transcript,
                    "  ⇒ {master} c{} t{} {} (reply within {}ms)",
                    envelope.clock,
                    envelope.term.unwrap_or(0),
                    serde_json::to_string(&envelope.message).unwrap(),
                    wait.as_millis()
                )
                .unwrap(),
                Output::ToPrimary(message) => writeln!(
                    transcript,
                    "  ↑ primary {}",
                    serde_json::to_string(&message).unwrap()
                )
                .unwrap(),
                Output::Event(event) => {
                    writeln!(
                        transcript,
                        "  • c{} @{}ms {}",
                        event.clock, event.at_ms, event.kind
                    )
                    .unwrap();
                }
                Output::Journal(JournalOp::Restart { at }) => {
                    writeln!(transcript, "  ▣ journal restarts at {at}").unwrap()
                }
                Output::Journal(JournalOp::Compact { base, snapshot }) => writeln!(
                    transcript,
                    "  ▣ journal compacted: {} snapshot events before {base}",
                    snapshot.len()
                )
                .unwrap(),
            }
        }
    }
    transcript
}

/// Replaces long hex strings with `<hex>` so transcripts do not depend on random values.
fn mask_hex(text: &str) -> String {
    let mut out = String::new();
    let mut run = String::new();
    for ch in text.chars() {
        if ch.is_ascii_hexdigit() {
            run.push(ch);
        } else {
            out.push_str(if run.len() >= 16 { "<hex>" } else { &run });
            run.clear();
            out.push(ch);
        }
    }
    out.push_str(if run.len() >= 16 { "<hex>" } else { &run });
    out
}

#[test]
fn coordinator_transcripts() {
    insta::glob!("scripts/coordinator/*.txt", |path| {
        let script = std::fs::read_to_string(path).unwrap();
        insta::assert_snapshot!(run(&script));
    });
}
