use super::*;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

/// An echo server behind a shaped link; returns the proxy address and the shaper.
async fn echo_behind(link: Link) -> (SocketAddr, LinkShaper) {
    let server = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let target = server.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = server.accept().await {
            tokio::spawn(async move {
                let (read, mut write) = stream.into_split();
                let mut lines = BufReader::new(read).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    write
                        .write_all(format!("{line}\n").as_bytes())
                        .await
                        .unwrap();
                }
            });
        }
    });
    let shaper = LinkShaper::new(
        [("client".to_string(), "server".to_string(), link)],
        1,
        CancellationToken::new(),
    );
    shaper.set_address("server", target);
    let addr = shaper.proxy("client", "server").await.unwrap();
    (addr, shaper)
}

async fn connect(addr: SocketAddr) -> (tokio::io::Lines<BufReader<OwnedReadHalf>>, OwnedWriteHalf) {
    let (read, write) = TcpStream::connect(addr).await.unwrap().into_split();
    (BufReader::new(read).lines(), write)
}

#[tokio::test]
async fn latency_delays_every_message_at_least_the_configured_time() {
    let link = Link {
        latency: Duration::from_millis(80),
        ..Link::default()
    };
    let (addr, _shaper) = echo_behind(link).await;
    let (mut lines, mut write) = connect(addr).await;
    for i in 0..3 {
        let sent = std::time::Instant::now();
        write
            .write_all(format!("ping {i}\n").as_bytes())
            .await
            .unwrap();
        assert_eq!(
            lines.next_line().await.unwrap().unwrap(),
            format!("ping {i}")
        );
        // Only client → server is declared: the way back is not delayed.
        assert!(
            sent.elapsed() >= Duration::from_millis(80),
            "{:?}",
            sent.elapsed()
        );
    }
}

#[tokio::test]
async fn a_cut_link_carries_nothing_and_heal_restores_it() {
    let (addr, shaper) = echo_behind(Link::default()).await;
    let (mut lines, mut write) = connect(addr).await;
    write.write_all(b"before\n").await.unwrap();
    assert_eq!(lines.next_line().await.unwrap().unwrap(), "before");

    shaper.cut("client", Some("server"), false);
    write.write_all(b"during the cut\n").await.unwrap();
    // The message is dropped, not delayed: wait until the proxy has counted it.
    while shaper.state("client", "server").unwrap().dropped == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    shaper.heal(None, None);
    write.write_all(b"after\n").await.unwrap();
    assert_eq!(
        lines.next_line().await.unwrap().unwrap(),
        "after",
        "the cut message never arrives"
    );
    let state = shaper.state("client", "server").unwrap();
    assert_eq!((state.carried, state.dropped), (2, 1));
}

#[tokio::test]
async fn a_held_link_delivers_by_hand_in_any_order_drops_and_releases_in_order() {
    let (addr, shaper) = echo_behind(Link::default()).await;
    let (mut lines, mut write) = connect(addr).await;
    shaper.hold("client", "server", true);
    for line in ["one", "two", "three", "four"] {
        write
            .write_all(format!("{line}\n").as_bytes())
            .await
            .unwrap();
    }
    while shaper.held().len() < 4 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let held = shaper.held();
    let previews: Vec<&str> = held.iter().map(|m| m.preview.as_str()).collect();
    assert_eq!(previews, ["one", "two", "three", "four"]);
    // "two" out of order, "one" dropped; the release lets the rest through in order.
    shaper.deliver_held(held[1].id).unwrap();
    assert_eq!(lines.next_line().await.unwrap().unwrap(), "two");
    shaper.discard_held(held[0].id).unwrap();
    assert!(shaper.deliver_held(held[0].id).is_err(), "gone");
    assert_eq!(shaper.release(Some("client"), Some("server")), 2);
    assert_eq!(lines.next_line().await.unwrap().unwrap(), "three");
    assert_eq!(lines.next_line().await.unwrap().unwrap(), "four");
    // Released: messages flow again.
    write.write_all(b"five\n").await.unwrap();
    assert_eq!(lines.next_line().await.unwrap().unwrap(), "five");
    assert!(shaper.held().is_empty());
}

#[tokio::test]
async fn a_one_way_cut_stops_only_one_direction() {
    let (addr, shaper) = echo_behind(Link::default()).await;
    let (mut lines, mut write) = connect(addr).await;
    shaper.cut("server", Some("client"), true);
    write.write_all(b"lost on the way back\n").await.unwrap();
    while shaper.state("server", "client").unwrap().dropped == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(
        shaper.state("client", "server").unwrap().carried,
        1,
        "it reached the server"
    );
    shaper.heal(Some("server"), Some("client"));
    write.write_all(b"back\n").await.unwrap();
    assert_eq!(lines.next_line().await.unwrap().unwrap(), "back");
}

#[tokio::test]
async fn one_way_loss_leaves_the_other_direction_alone() {
    let (_, shaper) = echo_behind(Link::default()).await;
    shaper.set_loss("client", "server", Percent(30.0), true);
    let loss = |from, to| shaper.state(from, to).map(|s| s.link.loss.0);
    assert_eq!(loss("client", "server"), Some(30.0));
    assert_eq!(loss("server", "client"), Some(0.0));
    shaper.set_loss("server", "client", Percent(10.0), false);
    assert_eq!(loss("client", "server"), Some(10.0));
    assert_eq!(loss("server", "client"), Some(10.0));
}

#[tokio::test]
async fn loss_drops_about_the_configured_share() {
    let link = Link {
        loss: Percent(50.0),
        ..Link::default()
    };
    let (addr, shaper) = echo_behind(link).await;
    let (mut lines, mut write) = connect(addr).await;
    for i in 0..200 {
        write.write_all(format!("m{i}\n").as_bytes()).await.unwrap();
    }
    write.write_all(b"end\n").await.unwrap();
    // Wait until the proxy has judged all 201 before lifting the loss.
    while {
        let s = shaper.state("client", "server").unwrap();
        s.carried + s.dropped < 201
    } {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    shaper.set_loss("client", "server", Percent(0.0), false);
    write.write_all(b"surely\n").await.unwrap();
    let mut received = 0;
    while let Some(line) = lines.next_line().await.unwrap() {
        if line == "surely" {
            break;
        }
        received += 1;
    }
    assert!(
        (50..=150).contains(&received),
        "{received} of 201 arrived at 50% loss"
    );
}

#[tokio::test]
async fn bandwidth_spaces_messages_out() {
    // 8 kbit/s: a 100-byte line takes 100ms on the wire.
    let link = Link {
        bandwidth: Some(crate::topology::units::Rate(8_000)),
        ..Link::default()
    };
    let (addr, _shaper) = echo_behind(link).await;
    let (mut lines, mut write) = connect(addr).await;
    let line = format!("{}\n", "x".repeat(99));
    let sent = std::time::Instant::now();
    for _ in 0..3 {
        write.write_all(line.as_bytes()).await.unwrap();
    }
    for _ in 0..3 {
        lines.next_line().await.unwrap().unwrap();
    }
    assert!(
        sent.elapsed() >= Duration::from_millis(300),
        "{:?}",
        sent.elapsed()
    );
}

/// A tap on the wire: forwards bytes both ways between its clients and `to`, and keeps a copy
/// of everything that passed.
async fn wiretap(to: SocketAddr) -> (SocketAddr, Arc<std::sync::Mutex<Vec<u8>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let kept = seen.clone();
    tokio::spawn(async move {
        while let Ok((inbound, _)) = listener.accept().await {
            let outbound = TcpStream::connect(to).await.unwrap();
            let (ir, iw) = inbound.into_split();
            let (or, ow) = outbound.into_split();
            for (mut from, mut into) in [(ir, ow), (or, iw)] {
                let seen = kept.clone();
                tokio::spawn(async move {
                    let mut buf = [0u8; 4096];
                    while let Ok(n) = from.read(&mut buf).await {
                        if n == 0 || into.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                        seen.lock().unwrap().extend_from_slice(&buf[..n]);
                    }
                    let _ = into.shutdown().await;
                });
            }
        }
    });
    (addr, seen)
}

/// Reads one line from a TLS stream's reader.
async fn tls_line(lines: &mut tokio::io::Lines<BufReader<crate::tls::Reader>>) -> String {
    tokio::time::timeout(Duration::from_secs(10), lines.next_line())
        .await
        .expect("an answer in time")
        .unwrap()
        .expect("a line")
}

#[tokio::test]
async fn an_encrypted_link_is_tls_on_both_hops_and_faults_still_cut_it() {
    let dir = tempfile::tempdir().unwrap();
    let text = "set TLS on\nnode coordinator { type master }\nnode worker { type worker }\n";
    let topology = crate::topology::check_bytes("tls.top", text.as_bytes())
        .0
        .unwrap();
    let pki = crate::tls::Pki::prepare(&topology, dir.path())
        .unwrap()
        .unwrap();
    let connector = pki.connector().unwrap();
    // The server: an encrypted port that echoes lines.
    let server = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server_addr = server.local_addr().unwrap();
    let acceptor = pki.acceptor("coordinator").unwrap();
    let serving = acceptor.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = server.accept().await {
            let acceptor = serving.clone();
            tokio::spawn(async move {
                if let crate::tls::Opening::Ready(stream) =
                    crate::tls::open(Some(&acceptor), crate::tls::Plaintext::Refused, tcp).await
                {
                    let (read, mut write) = stream.split();
                    let mut lines = BufReader::new(read).lines();
                    while let Ok(Some(line)) = lines.next_line().await {
                        let _ = write.write_all(format!("{line}\n").as_bytes()).await;
                    }
                }
            });
        }
    });
    // Taps on both hops: worker → tap → proxy → tap → coordinator.
    let (far_tap, far_seen) = wiretap(server_addr).await;
    let mut shaper = LinkShaper::new([], 1, CancellationToken::new());
    shaper.encrypt("worker", "coordinator", acceptor, connector.clone());
    shaper.set_address("coordinator", far_tap);
    let proxy = shaper.proxy("worker", "coordinator").await.unwrap();
    let (near_tap, near_seen) = wiretap(proxy).await;
    let _near = crate::tls::trust(&near_tap.to_string(), "coordinator", &connector);

    let stream = crate::tls::dial(&near_tap.to_string()).await.unwrap();
    let (read, mut write) = stream.split();
    let mut lines = BufReader::new(read).lines();
    let hello = r#"{"type":"heartbeat","from":"worker-1","note":"visible words"}"#;
    write
        .write_all(format!("{hello}\n").as_bytes())
        .await
        .unwrap();
    assert_eq!(tls_line(&mut lines).await, hello, "the line went through");
    for (hop, seen) in [
        ("worker → proxy", &near_seen),
        ("proxy → coordinator", &far_seen),
    ] {
        let seen = seen.lock().unwrap().clone();
        assert!(seen.len() > hello.len(), "{hop}: bytes passed");
        assert_eq!(
            &seen[..2],
            &[0x16, 0x03],
            "{hop}: a TLS handshake record first"
        );
        for plain in ["heartbeat", "visible words", "\"type\""] {
            assert!(
                !seen.windows(plain.len()).any(|w| w == plain.as_bytes()),
                "{hop}: `{plain}` was readable on the wire"
            );
        }
    }

    // The proxy still sees lines: a partition cuts the encrypted link, and heal restores it.
    shaper.cut("worker", Some("coordinator"), false);
    write.write_all(b"during the cut\n").await.unwrap();
    while shaper.state("worker", "coordinator").unwrap().dropped == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    shaper.heal(None, None);
    write.write_all(b"after\n").await.unwrap();
    assert_eq!(
        tls_line(&mut lines).await,
        "after",
        "the cut line was dropped"
    );

    // A plaintext client of the encrypted link is refused, and counted on it.
    let (mut plain_lines, mut plain_write) = connect(proxy).await;
    plain_write
        .write_all(b"{\"type\":\"hello\"}\n")
        .await
        .unwrap();
    let answer = plain_lines.next_line().await.unwrap().unwrap();
    assert!(answer.contains("this link is encrypted"), "{answer}");
    assert_eq!(plain_lines.next_line().await.unwrap(), None, "then closed");
    drop(plain_write);
    let counted = async {
        while shaper.state("worker", "coordinator").unwrap().plaintext == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), counted)
        .await
        .expect("the refusal is counted on the link");
}

/// An undelayed link writes what it reads at once, but never ahead of messages still waiting
/// for their time or held: made fast again, a slowed or held link keeps its order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_made_fast_again_keeps_the_order_of_what_it_delayed() {
    let (addr, shaper) = echo_behind(Link::default()).await;
    let (mut lines, mut write) = connect(addr).await;
    let reader = tokio::spawn(async move {
        let mut got = Vec::new();
        while got.len() < 3000 {
            match tokio::time::timeout(Duration::from_secs(10), lines.next_line()).await {
                Ok(Ok(Some(line))) => got.push(line),
                _ => break,
            }
        }
        got
    });
    let mut sent = Vec::new();
    for i in 0..3000 {
        match i {
            100 => shaper.set_latency("client", "server", Duration::from_millis(3), Duration::ZERO),
            200 | 1200 | 2200 => {
                shaper.set_latency("client", "server", Duration::ZERO, Duration::ZERO)
            }
            1000 | 2000 => shaper.hold("client", "server", true),
            1100 | 2100 => {
                shaper.release(Some("client"), Some("server"));
            }
            _ => {}
        }
        write.write_all(format!("m{i}\n").as_bytes()).await.unwrap();
        sent.push(format!("m{i}"));
        if i % 4 == 0 {
            tokio::time::sleep(Duration::from_micros(50)).await;
        }
    }
    let got = reader.await.unwrap();
    assert_eq!(got.len(), sent.len(), "every message arrives");
    let first_wrong = got.iter().zip(&sent).position(|(g, s)| g != s);
    assert_eq!(first_wrong, None, "in order");
}

/// The rule that keeps the order: a burst is written at once only if it is all due and the
/// delivering task has written everything handed to it; otherwise it queues behind.
#[tokio::test]
async fn a_burst_queues_behind_what_the_delivering_task_has_not_written() {
    let (near, mut far) = tokio::io::duplex(4096);
    let write: crate::tls::Writer = Box::new(near);
    let write = tokio::sync::Mutex::new(write);
    let (tx, mut rx) = mpsc::unbounded_channel();
    let out = Outgoing {
        tx,
        pending: Arc::default(),
    };
    let mut buffer = Vec::new();
    let now = Instant::now();
    let line = |text: &'static str| Bytes::from_static(text.as_bytes());

    let mut batch = vec![(now, line("a")), (now, line("b"))];
    assert!(hand_over(&mut batch, &out, &write, &mut buffer).await);
    let mut got = [0u8; 4];
    far.read_exact(&mut got).await.unwrap();
    assert_eq!(&got, b"a\nb\n", "nothing waits: written at once");
    assert!(rx.try_recv().is_err());

    assert!(out.send(vec![(now, line("c"))]));
    let mut batch = vec![(now, line("d"))];
    assert!(hand_over(&mut batch, &out, &write, &mut buffer).await);
    assert_eq!(rx.try_recv().unwrap()[0].1, line("c"));
    assert_eq!(rx.try_recv().unwrap()[0].1, line("d"), "queued behind c");
    assert_eq!(out.pending.load(Ordering::SeqCst), 2);

    let later = Instant::now() + Duration::from_secs(1);
    let out = Outgoing {
        tx: out.tx.clone(),
        pending: Arc::default(),
    };
    let mut batch = vec![(now, line("e")), (later, line("f"))];
    assert!(hand_over(&mut batch, &out, &write, &mut buffer).await);
    assert_eq!(rx.try_recv().unwrap().len(), 2, "not all due: handed over");
}

/// `next` within a generous deadline: a test that waits for what never comes fails, saying so.
async fn within<T>(next: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(10), next)
        .await
        .expect("it came within ten seconds")
}

/// A line server for a node's own link: what it reads comes out of the returned channel.
async fn line_server() -> (SocketAddr, mpsc::UnboundedReceiver<String>) {
    let server = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = server.local_addr().unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((stream, _)) = server.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut lines = BufReader::new(stream).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    let _ = tx.send(line);
                }
                let _ = tx.send("<closed>".to_string());
            });
        }
    });
    (addr, rx)
}

#[tokio::test]
async fn a_node_shapes_its_own_link_by_the_rules_its_launcher_says() {
    let (addr, mut received) = line_server().await;
    let node = LinkShaper::new(
        [(
            "worker-1".to_string(),
            "coordinator".to_string(),
            Link::default(),
        )],
        7,
        CancellationToken::new(),
    );
    let mut seen = node.watch();
    node.own_links("worker-1", &[("coordinator".to_string(), addr.to_string())])
        .unwrap();
    // A dial to the coordinator's address is a pipe in memory through the node's shaper.
    let stream = crate::tls::dial(&addr.to_string()).await.unwrap();
    assert!(matches!(stream, crate::tls::Stream::Memory(_, _)));
    assert_eq!(stream.peer_addr().unwrap(), addr);
    let (_read, mut write) = stream.split();
    write
        .write_all(b"{\"type\":\"heartbeat\"}\n")
        .await
        .unwrap();
    assert_eq!(
        within(received.recv()).await.unwrap(),
        r#"{"type":"heartbeat"}"#
    );
    let tapped = within(seen.recv()).await.unwrap();
    assert_eq!(
        (
            &*tapped.from,
            &*tapped.to,
            tapped.kind.as_str(),
            tapped.fate
        ),
        ("worker-1", "coordinator", "heartbeat", Fate::Carried)
    );
    // Cut, as the launcher says it: dropped, counted, and the connection stays open.
    let cut = LinkState {
        cut: true,
        ..LinkState::default()
    };
    let line = own::rules_line("worker-1", "coordinator", &cut);
    assert_eq!(node.obey(&line), Some(Ok(())));
    write
        .write_all(b"{\"type\":\"heartbeat\"}\n")
        .await
        .unwrap();
    let tapped = within(seen.recv()).await.unwrap();
    assert_eq!(tapped.fate, Fate::Dropped);
    assert_eq!(node.state("worker-1", "coordinator").unwrap().dropped, 1);
    // Held: the message waits, numbered; delivered by that number.
    let held = LinkState {
        held: true,
        ..LinkState::default()
    };
    let line = own::rules_line("worker-1", "coordinator", &held);
    assert_eq!(node.obey(&line), Some(Ok(())));
    write.write_all(b"{\"type\":\"result\"}\n").await.unwrap();
    assert_eq!(within(seen.recv()).await.unwrap().fate, Fate::Held);
    let waiting = node.held();
    assert_eq!(waiting.len(), 1);
    let deliver = format!("deliver {}", waiting[0].id);
    assert_eq!(node.obey(&deliver), Some(Ok(())));
    assert_eq!(
        within(received.recv()).await.unwrap(),
        r#"{"type":"result"}"#
    );
    // Something else is not about links; a bad line about them says what is wrong.
    assert_eq!(node.obey("skew 20"), None);
    assert_eq!(
        node.obey("deliver x"),
        Some(Err("bad message number `x`".to_string()))
    );
    assert!(matches!(node.obey("link worker-1"), Some(Err(_))));
    // The node's end closes: the server hears it, the link not being cut.
    assert_eq!(
        node.obey(&own::rules_line(
            "worker-1",
            "coordinator",
            &LinkState::default()
        )),
        Some(Ok(()))
    );
    drop(write);
    drop(_read);
    assert_eq!(within(received.recv()).await.unwrap(), "<closed>");
}

#[tokio::test]
async fn the_launcher_tells_a_node_its_rules_and_takes_its_reports_as_a_proxys() {
    let shaper = LinkShaper::new(
        [(
            "worker-1".to_string(),
            "coordinator".to_string(),
            Link::default(),
        )],
        1,
        CancellationToken::new(),
    );
    let (control, mut told) = mpsc::unbounded_channel();
    shaper.tell_nodes_by(control);
    let mut seen = shaper.watch();
    shaper.adopt("worker-1", "coordinator");
    assert!(shaper.adopted("worker-1", "coordinator"));
    // At once: the server hears of the direction into it, the node of both.
    let mut lines = Vec::new();
    while let Ok(line) = told.try_recv() {
        lines.push(line);
    }
    let quiet = LinkState::default();
    assert_eq!(
        lines,
        [
            (
                "coordinator".to_string(),
                own::rules_line("worker-1", "coordinator", &quiet)
            ),
            (
                "worker-1".to_string(),
                own::rules_line("worker-1", "coordinator", &quiet)
            ),
            (
                "worker-1".to_string(),
                own::rules_line("coordinator", "worker-1", &quiet)
            ),
        ]
    );
    // A one-way cut: only that direction's rules change, told to both ends.
    shaper.cut("worker-1", Some("coordinator"), true);
    let cut = LinkState {
        cut: true,
        ..LinkState::default()
    };
    let mut lines = Vec::new();
    while let Ok(line) = told.try_recv() {
        lines.push(line);
    }
    lines.sort();
    let rules = own::rules_line("worker-1", "coordinator", &cut);
    assert_eq!(
        lines,
        [
            ("coordinator".to_string(), rules.clone()),
            ("worker-1".to_string(), rules)
        ]
    );
    // What the node saw is counted and tapped as a proxy's would be.
    let report = r#"{"seen":{"at_ms":5,"from":"worker-1","to":"coordinator","kind":"heartbeat","clock":3,"fate":"dropped","count":4}}"#;
    shaper.take_report("worker-1", report).unwrap();
    assert_eq!(shaper.state("worker-1", "coordinator").unwrap().dropped, 4);
    let tapped = within(seen.recv()).await.unwrap();
    assert_eq!((tapped.kind.as_str(), tapped.count), ("heartbeat", 4));
    // A node reports only on its own links, and only reports.
    assert!(shaper.take_report("worker-2", report).is_err());
    assert!(shaper.take_report("worker-1", "{\"seen\":1}").is_err());
    // A message the node holds is numbered among the launcher's, and delivered by that number.
    let held = r#"{"held":{"id":1,"from":"coordinator","to":"worker-1","kind":"assign","clock":9,"at_ms":1,"preview":"{}"}}"#;
    shaper.take_report("worker-1", held).unwrap();
    shaper.take_report("worker-1", held).unwrap();
    let waiting = shaper.held();
    assert_eq!(waiting.len(), 2);
    assert_ne!(waiting[0].id, waiting[1].id);
    let delivered = shaper.deliver_held(waiting[1].id).unwrap();
    assert_eq!(delivered.kind, "assign");
    assert_eq!(
        told.try_recv().unwrap(),
        ("worker-1".to_string(), "deliver 1".to_string())
    );
    assert!(shaper.deliver_held(waiting[1].id).is_err());
    // The node is gone: what it held is forgotten.
    shaper.forget_held_of("worker-1");
    assert!(shaper.held().is_empty());
}

#[tokio::test]
async fn a_held_message_whose_connection_closed_is_lost_not_delivered() {
    let shaper = LinkShaper::new(
        [("client".to_string(), "server".to_string(), Link::default())],
        1,
        CancellationToken::new(),
    );
    let mut seen = shaper.watch();
    let names: (Arc<str>, Arc<str>) = ("client".into(), "server".into());
    let (tx, rx) = mpsc::unbounded_channel();
    let out = Outgoing {
        tx,
        pending: Arc::new(AtomicUsize::new(0)),
    };
    for _ in 0..2 {
        shaper.keep_held(&names, Bytes::from_static(b"{\"type\":\"result\"}\n"), &out);
        assert_eq!(within(seen.recv()).await.unwrap().fate, Fate::Held);
    }
    // The connection it would go out on is gone.
    drop(rx);
    let held = shaper.held();
    let said = shaper.deliver_held(held[0].id).unwrap_err();
    assert!(
        said.contains("connection is closed") && said.contains("is lost"),
        "{said}"
    );
    assert_eq!(within(seen.recv()).await.unwrap().fate, Fate::Dropped);
    // Released with the link: lost too, never shown delivered.
    assert_eq!(shaper.release(None, None), 1);
    assert_eq!(within(seen.recv()).await.unwrap().fate, Fate::Dropped);
    assert!(shaper.held().is_empty());
}

/// A chat server's MessagePack frames cross a shaped link whole, delayed or not: the proxy cuts
/// them out between lines (a frame may hold newline bytes) and writes them back as they came.
#[tokio::test]
async fn messagepack_frames_cross_a_shaped_link_byte_for_byte() {
    use crate::protocol::message::{ChatBody, ChatEntry, Envelope, Message};
    let delivery = |clock| Envelope {
        from: "chat-1".into(),
        clock,
        term: None,
        message: Message::ChatMessage {
            entry: Box::new(ChatEntry {
                clock,
                server: "chat-1".into(),
                seq: 10,
                body: ChatBody::Post {
                    channel: "general".into(),
                    from: "ada".into(),
                    text: "two\nlines".into(),
                },
                request: None,
            }),
        },
    };
    let mut sent = b"{\"type\":\"chat_done\"}\n".to_vec();
    // A clock of 10 is the byte 0x0A: a newline inside the frame.
    for clock in [10, 11] {
        assert!(crate::protocol::packed::delivery(
            &mut sent,
            &delivery(clock)
        ));
    }
    sent.extend_from_slice(b"{\"type\":\"pong\"}\n");
    for latency in [Duration::ZERO, Duration::from_millis(20)] {
        let server = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let target = server.local_addr().unwrap();
        let reply = sent.clone();
        tokio::spawn(async move {
            let (mut stream, _) = server.accept().await.unwrap();
            let mut asked = [0u8; 16];
            let _ = stream.read(&mut asked).await;
            stream.write_all(&reply).await.unwrap();
        });
        let back = Link {
            latency,
            ..Link::default()
        };
        let shaper = LinkShaper::new(
            [("server".to_string(), "client".to_string(), back)],
            1,
            CancellationToken::new(),
        );
        shaper.set_address("server", target);
        let addr = shaper.proxy("client", "server").await.unwrap();
        let (mut read, mut write) = TcpStream::connect(addr).await.unwrap().into_split();
        write.write_all(b"{\"type\":\"ping\"}\n").await.unwrap();
        let mut got = vec![0u8; sent.len()];
        within(read.read_exact(&mut got)).await.unwrap();
        assert_eq!(got, sent, "latency {latency:?}");
    }
}
