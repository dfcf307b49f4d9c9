//! What a message costs to cross a local socket: the console's link proxies write what they
//! read from one node to another, so every message between the nodes costs the console a send
//! and a receive. This measures both over TCP on 127.0.0.1 (what the proxies use) and over a
//! Unix stream socket (what they could use between the console and tcluster's own nodes).
//!
//!     cargo bench --bench sockets [BYTES] [PER_SECOND]
//!
//! A sender writes BYTES (1,200: about eight of the cluster's messages, as a proxy writes
//! them at 10,000 jobs a second) PER_SECOND times a second (4,000: about the proxies' sends at
//! that load) for five seconds to a reader on another thread, which sleeps in its read between
//! writes as a node does. Each side's CPU comes from its thread's CPU clock: the sender's
//! counted around each write only, the reader's over the whole run. Two rounds, each socket
//! kind once per round. Method and results are in docs/performance/console.md.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::net::{UnixListener, UnixStream};
use std::time::{Duration, Instant};

use nix::time::{ClockId, clock_gettime};

const SECONDS: u64 = 5;

/// This thread's CPU time so far, in seconds.
fn thread_cpu() -> f64 {
    clock_gettime(ClockId::CLOCK_THREAD_CPUTIME_ID)
        .map(|t| t.tv_sec() as f64 + t.tv_nsec() as f64 / 1e9)
        .unwrap_or(0.0)
}

/// Microseconds of CPU per message: (the sender's in its writes, the reader's).
fn measure(
    mut send: impl Write,
    mut receive: impl Read + Send + 'static,
    bytes: usize,
    rate: u64,
) -> (f64, f64) {
    let messages = rate * SECONDS;
    let total = messages as usize * bytes;
    let reader = std::thread::spawn(move || {
        let mut buffer = vec![0u8; 1 << 16];
        let mut got = 0;
        let started = thread_cpu();
        while got < total {
            match receive.read(&mut buffer) {
                Ok(0) | Err(_) => break,
                Ok(n) => got += n,
            }
        }
        thread_cpu() - started
    });
    let message = vec![b'x'; bytes];
    let started = Instant::now();
    let mut in_writes = 0.0;
    for i in 0..messages {
        let due = started + Duration::from_nanos(i * 1_000_000_000 / rate);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let before = thread_cpu();
        send.write_all(&message).expect("the reader is there");
        in_writes += thread_cpu() - before;
    }
    let reading = reader.join().expect("the reader ends");
    let per = |s: f64| s / messages as f64 * 1e6;
    (per(in_writes), per(reading))
}

fn main() {
    // `cargo bench` passes `--bench`: only numbers are ours.
    let numbers: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let bytes = numbers.first().copied().unwrap_or(1_200) as usize;
    let rate = numbers.get(1).copied().unwrap_or(4_000).max(1);
    println!("{bytes}-byte writes, {rate} a second for {SECONDS} s; CPU per message:");
    let path = std::env::temp_dir().join(format!("tcluster-sockets-{}", std::process::id()));
    for round in 1..=2 {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a port");
        let send = TcpStream::connect(listener.local_addr().expect("bound")).expect("connects");
        send.set_nodelay(true).expect("no delay");
        let (receive, _) = listener.accept().expect("accepts");
        let (s, r) = measure(send, receive, bytes, rate);
        println!("  round {round}  TCP 127.0.0.1  send {s:5.2} µs  receive {r:5.2} µs");

        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path).expect("a socket file");
        let send = UnixStream::connect(&path).expect("connects");
        let (receive, _) = listener.accept().expect("accepts");
        let (s, r) = measure(send, receive, bytes, rate);
        println!("  round {round}  Unix socket    send {s:5.2} µs  receive {r:5.2} µs");
        let _ = std::fs::remove_file(&path);
    }
}
