use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

use super::*;

fn encrypted_topology() -> Topology {
    let text = "node coordinator { type master; port 7400 }\nnode worker { type worker }\n\
                connection worker -> coordinator { encrypted true }\n";
    topology(text)
}

fn topology(text: &str) -> Topology {
    let (topology, report) = crate::topology::check_bytes("tls.top", text.as_bytes());
    topology.unwrap_or_else(|| panic!("{}", report.count_line()))
}

use crate::topology::Topology;

/// A server on an encrypted port that answers each line with `echo: LINE`.
async fn echo_server(acceptor: Acceptor) -> (String, tokio::sync::mpsc::UnboundedReceiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (said, hear) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let (acceptor, said) = (acceptor.clone(), said.clone());
            tokio::spawn(async move {
                match open(Some(&acceptor), Plaintext::Refused, tcp).await {
                    Opening::Ready(stream) => {
                        let (read, mut write) = stream.split();
                        let mut lines = BufReader::new(read).lines();
                        while let Ok(Some(line)) = lines.next_line().await {
                            let _ = write.write_all(format!("echo: {line}\n").as_bytes()).await;
                        }
                    }
                    Opening::Plaintext => {
                        let _ = said.send("plaintext".to_string());
                    }
                    Opening::Failed(why) => {
                        let _ = said.send(format!("failed: {why}"));
                    }
                }
            });
        }
    });
    (addr, hear)
}

#[tokio::test]
async fn a_trusted_address_speaks_tls_and_is_checked_against_the_cluster_ca() {
    let dir = tempfile::tempdir().unwrap();
    let topology = encrypted_topology();
    assert!(topology.encrypted("coordinator"));
    assert!(!topology.encrypted("worker-1"), "a worker serves no port");
    let pki = Pki::prepare(&topology, dir.path()).unwrap().unwrap();
    let (addr, _) = echo_server(pki.acceptor("coordinator").unwrap()).await;
    let _trusted = trust(&addr, "coordinator", &pki.connector().unwrap());

    let stream = dial(&addr).await.unwrap();
    assert!(stream.is_tls());
    let (read, mut write) = stream.split();
    write.write_all(b"{\"type\":\"ping\"}\n").await.unwrap();
    let mut lines = BufReader::new(read).lines();
    assert_eq!(
        lines.next_line().await.unwrap().as_deref(),
        Some("echo: {\"type\":\"ping\"}")
    );
}

#[tokio::test]
async fn a_server_is_refused_when_its_certificate_names_another_node() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::prepare(&encrypted_topology(), dir.path())
        .unwrap()
        .unwrap();
    let (addr, _) = echo_server(pki.acceptor("coordinator").unwrap()).await;
    let _trusted = trust(&addr, "backup", &pki.connector().unwrap());
    let e = dial(&addr).await.err().expect("the name must not match");
    assert!(e.to_string().contains("certificate"), "{e}");
}

#[tokio::test]
async fn a_server_is_refused_when_another_ca_signed_it() {
    let (ours, theirs) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let topology = encrypted_topology();
    let ours = Pki::prepare(&topology, ours.path()).unwrap().unwrap();
    let theirs = Pki::prepare(&topology, theirs.path()).unwrap().unwrap();
    let (addr, _) = echo_server(theirs.acceptor("coordinator").unwrap()).await;
    let _trusted = trust(&addr, "coordinator", &ours.connector().unwrap());
    assert!(dial(&addr).await.is_err());
}

#[tokio::test]
async fn a_plaintext_peer_is_told_in_its_own_dialect_and_closed() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::prepare(&encrypted_topology(), dir.path())
        .unwrap()
        .unwrap();
    let (addr, mut hear) = echo_server(pki.acceptor("coordinator").unwrap()).await;
    for (hello, answer) in [
        (
            "{\"type\":\"hello\"}\n",
            "{\"message\":\"this link is encrypted",
        ),
        ("REGISTER:{\"id\":\"w\"}\n", "ERROR:this link is encrypted"),
    ] {
        let tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
        let (read, mut write) = tcp.into_split();
        write.write_all(hello.as_bytes()).await.unwrap();
        let mut lines = BufReader::new(read).lines();
        let line = lines.next_line().await.unwrap().unwrap();
        assert!(line.starts_with(answer), "{line}");
        assert_eq!(lines.next_line().await.unwrap(), None, "then closed");
        assert_eq!(hear.recv().await.as_deref(), Some("plaintext"));
    }
}

#[test]
fn the_certificates_are_kept_under_the_state_directory_and_the_ca_survives_a_relaunch() {
    let dir = tempfile::tempdir().unwrap();
    let topology = encrypted_topology();
    let first = Pki::prepare(&topology, dir.path()).unwrap().unwrap();
    let ca = std::fs::read(first.ca()).unwrap();
    let again = Pki::prepare(&topology, dir.path()).unwrap().unwrap();
    assert_eq!(std::fs::read(again.ca()).unwrap(), ca, "the CA is kept");
    assert!(again.cert("coordinator").is_file());
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(again.key("coordinator"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o077, 0, "a private key is its owner's only");
}

#[test]
fn without_an_encrypted_link_no_certificate_is_made() {
    let dir = tempfile::tempdir().unwrap();
    let topology = topology("node coordinator { type master }\n");
    assert_eq!(Pki::prepare(&topology, dir.path()).unwrap(), None);
    assert!(!dir.path().join(pki::DIR).exists());
}

#[test]
fn a_topology_naming_its_own_certificates_must_hold_them_all() {
    let text = "set TLS on\nset TLS_DIR /nonexistent/certs\nnode coordinator { type master }\n";
    let topology = topology(text);
    let e = Pki::prepare(&topology, std::path::Path::new("/tmp")).unwrap_err();
    assert!(e.to_string().contains("/nonexistent/certs/ca.pem"), "{e}");
}

#[test]
fn a_node_name_that_is_no_dns_name_gets_one_made_from_it() {
    assert_eq!(server_name("chat-1"), "chat-1");
    let made = server_name("wörker 1");
    assert!(made.ends_with(".tcluster"), "{made}");
    assert!(ServerName::try_from(made).is_ok());
}

#[tokio::test]
async fn a_port_that_takes_both_serves_plaintext_peers_as_before() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::prepare(&encrypted_topology(), dir.path())
        .unwrap()
        .unwrap();
    let acceptor = pki.acceptor("coordinator").unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if let Opening::Ready(stream) = open(Some(&acceptor), Plaintext::Served, tcp).await
                {
                    let tls = stream.is_tls();
                    let (read, mut write) = stream.split();
                    let mut lines = BufReader::new(read).lines();
                    while let Ok(Some(line)) = lines.next_line().await {
                        let reply = format!("{line} (tls: {tls})\n");
                        let _ = write.write_all(reply.as_bytes()).await;
                    }
                }
            });
        }
    });
    // Old lab code in plaintext.
    let tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let (read, mut write) = tcp.into_split();
    write.write_all(b"REGISTER:{\"id\":\"w\"}\n").await.unwrap();
    let mut lines = BufReader::new(read).lines();
    assert_eq!(
        lines.next_line().await.unwrap().unwrap(),
        "REGISTER:{\"id\":\"w\"} (tls: false)"
    );
    // And a peer on an encrypted link, in TLS, on the same port.
    let _trusted = trust(&addr, "coordinator", &pki.connector().unwrap());
    let (read, mut write) = dial(&addr).await.unwrap().split();
    write.write_all(b"hello\n").await.unwrap();
    let mut lines = BufReader::new(read).lines();
    assert_eq!(
        lines.next_line().await.unwrap().unwrap(),
        "hello (tls: true)"
    );
}

#[test]
fn an_encrypted_link_encrypts_that_link_and_tls_on_every_port() {
    let t = encrypted_topology();
    assert!(t.encrypted_link("worker", "coordinator"));
    assert!(t.encrypted_link("coordinator", "worker"), "either way");
    assert!(!t.tls_only("coordinator"), "old lab code still joins");
    let all = topology("set TLS on\nnode coordinator { type master }\nnode chat { type chat }\n");
    assert!(all.tls_only("coordinator") && all.tls_only("chat"));
    assert!(all.encrypted_link("anyone", "chat"));
}

#[test]
fn certificate_files_that_are_missing_or_garbage_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, "not a certificate\n").unwrap();
    let missing = dir.path().join("missing.pem");
    let e = Connector::from_ca_file(&missing).err().unwrap().to_string();
    assert!(
        e.contains("cannot read the cluster CA") && e.contains("missing.pem"),
        "{e}"
    );
    let e = Connector::from_ca_file(&garbage).err().unwrap().to_string();
    assert!(
        e.contains("garbage.pem") && e.contains("no certificate"),
        "{e}"
    );
    let e = Acceptor::from_files(&garbage, &garbage)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("garbage.pem"), "{e}");
}
