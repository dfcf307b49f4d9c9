//! What reading one message costs a client or a node: the lines tcluster's nodes write most
//! often (a chat delivery, an assignment, a result, a job's event), read by tcluster's decoder
//! (by their shape, `protocol::hot_read`), by serde's general JSON decoder, and — for the
//! choice of an encoding — the same message as MessagePack, read by rmp-serde; and a chat
//! delivery as the MessagePack frame a chat server sends a subscriber that asked for one
//! (`protocol::packed`), read by its shape.
//!
//!     cargo bench --bench decode
//!
//! It prints the median of seven rounds, in nanoseconds per message. Method and results are in
//! docs/performance/chat.md.

use std::hint::black_box;
use std::time::Instant;

use tcluster::protocol::message::{ChatBody, ChatEntry, Envelope, JobId, Message};
use tcluster::protocol::{Dialect, decode, packed};
use tcluster::role::event::{ClusterEvent, EventKind};

/// Nanoseconds per call of `read`, the median of seven rounds of `n` calls.
fn time(n: u32, mut read: impl FnMut() -> bool) -> f64 {
    let mut rounds: Vec<f64> = (0..7)
        .map(|_| {
            let started = Instant::now();
            for _ in 0..n {
                assert!(black_box(read()));
            }
            started.elapsed().as_nanos() as f64 / f64::from(n)
        })
        .collect();
    rounds.sort_by(f64::total_cmp);
    rounds[3]
}

fn main() {
    let envelope = |message| Envelope {
        from: "chat-1".into(),
        clock: 412_337,
        term: None,
        message,
    };
    let messages = [
        (
            "chat delivery",
            envelope(Message::ChatMessage {
                entry: Box::new(ChatEntry {
                    clock: 412_336,
                    server: "chat-1".into(),
                    seq: 98_765,
                    body: ChatBody::Post {
                        channel: "general".into(),
                        from: "alice".into(),
                        text: "1764322222.123456".into(),
                    },
                    request: None,
                }),
            }),
        ),
        (
            "assign",
            envelope(Message::Assign {
                job: JobId(123_456),
                data: "echo hello".into(),
                attempt: 1,
            }),
        ),
        (
            "job_done",
            envelope(Message::JobDone {
                job: JobId(123_456),
                result: "hello".into(),
                attempt: Some(1),
            }),
        ),
        (
            "event",
            envelope(Message::Event {
                event: std::sync::Arc::new(ClusterEvent {
                    at_ms: 81_234,
                    clock: 412_330,
                    kind: EventKind::JobCompleted {
                        job: JobId(123_456),
                        worker: "worker-3".into(),
                        result: "hello".into(),
                        read: false,
                    },
                }),
            }),
        ),
    ];
    let n = 200_000;
    println!(
        "{:<14} {:>6} {:>8} {:>11} {:>9} {:>11} {:>8} {:>6}",
        "message", "JSON B", "by shape", "serde JSON", "MsgPack B", "rmp-serde", "frame B", "frame"
    );
    for (name, e) in messages {
        let line = e.to_json();
        let packed = rmp_serde::to_vec_named(&e).expect("encodable");
        assert_eq!(
            rmp_serde::from_slice::<Envelope>(&packed).ok(),
            Some(e.clone())
        );
        let shape = time(n, || {
            decode(Dialect::Native, &line, "").is_ok_and(|d| d == e)
        });
        let general = time(n, || {
            serde_json::from_str::<Envelope>(&line).is_ok_and(|d| d == e)
        });
        let msgpack = time(n, || {
            rmp_serde::from_slice::<Envelope>(&packed).is_ok_and(|d| d == e)
        });
        let mut frame = Vec::new();
        let (frame_bytes, framed) = if packed::delivery(&mut frame, &e) {
            let framed = time(n, || packed::read_delivery(&frame).is_ok_and(|d| d == e));
            (frame.len().to_string(), format!("{framed:.0}"))
        } else {
            ("-".into(), "-".into())
        };
        println!(
            "{name:<14} {:>6} {shape:>8.0} {general:>11.0} {:>9} {msgpack:>11.0} {frame_bytes:>8} \
             {framed:>6}",
            line.len(),
            packed.len()
        );
    }
}
