//! Encrypted links: TLS 1.3 (rustls) on every link to a server the topology marks encrypted.
//!
//! A server node (master, chat server, broker) is *encrypted* when `set TLS "on"` is written,
//! or when a `connection … { encrypted true }` touches it ([`crate::topology::Topology::encrypted`]).
//! Its port then speaks TLS only: every peer proves nothing new (the cluster secret still does
//! that) but talks through a channel no one on the network can read or alter, and checks the
//! server's certificate against the cluster's CA ([`pki`]). A peer that speaks plaintext to it
//! is answered with one clear error line, in its own dialect, and closed ([`open`]).
//!
//! Which addresses speak TLS is the process's own trust table ([`trust`]): whoever learns that
//! an address is an encrypted server's (a node from its topology and launcher, the supervisor
//! from its shaped links, `tcluster client` from the topology) registers it there with the
//! server's name, and every dial in the process ([`dial`]) wraps the connection accordingly.

pub mod pki;

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, RwLock};
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

pub use pki::Pki;

/// The environment variable that names the cluster CA's certificate (PEM) for a node or an
/// outside program: what it checks encrypted servers against.
pub const CA_ENV: &str = "TCLUSTER_CA";
/// The environment variable that names a server node's certificate chain (PEM).
pub const CERT_ENV: &str = "TCLUSTER_CERT";
/// The environment variable that names a server node's private key (PEM).
pub const KEY_ENV: &str = "TCLUSTER_KEY";

/// How long a new connection may stay silent before its first byte says whether it speaks TLS,
/// and how long a TLS handshake may take.
const OPENING_TIMEOUT: Duration = Duration::from_secs(10);

/// The first byte of every TLS record that opens a connection (a handshake record).
const TLS_HANDSHAKE: u8 = 0x16;

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read or written, or does not hold what it should.
    #[error("{what} {}: {reason}", path.display())]
    File {
        /// What it was meant to be.
        what: &'static str,
        /// Where.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The certificates or keys were refused by TLS.
    #[error("{0}")]
    Config(String),
}

/// The TLS files of a node, as its launcher hands them over.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TlsFiles {
    /// The cluster CA's certificate: every encrypted server is checked against it.
    pub ca: Option<PathBuf>,
    /// This node's certificate chain, if it serves an encrypted port.
    pub cert: Option<PathBuf>,
    /// Its private key.
    pub key: Option<PathBuf>,
}

impl TlsFiles {
    /// The environment variables a launcher sets for these files.
    pub fn env(&self) -> Vec<(&'static str, PathBuf)> {
        [
            (CA_ENV, &self.ca),
            (CERT_ENV, &self.cert),
            (KEY_ENV, &self.key),
        ]
        .into_iter()
        .filter_map(|(var, path)| path.clone().map(|p| (var, p)))
        .collect()
    }
}

/// The crypto every configuration here uses (ring), TLS 1.3 only.
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn config_error(e: rustls::Error) -> TlsError {
    TlsError::Config(e.to_string())
}

/// The name a server's certificate carries and its peers check: the node's name when it is a
/// valid DNS name (`coordinator`, `chat-1`), otherwise one made from it.
pub fn server_name(node: &str) -> String {
    if ServerName::try_from(node).is_ok_and(|n| matches!(n, ServerName::DnsName(_))) {
        return node.to_string();
    }
    use sha2::Digest;
    let digest = sha2::Sha256::digest(node.as_bytes());
    format!("node-{}.tcluster", hex::encode(&digest[..8]))
}

/// Checks encrypted servers against a CA.
#[derive(Clone)]
pub struct Connector(tokio_rustls::TlsConnector);

impl Connector {
    /// Trusts the CA certificate(s) in this PEM file.
    pub fn from_ca_file(path: &Path) -> Result<Self, TlsError> {
        let pem = std::fs::read(path).map_err(|e| TlsError::File {
            what: "cannot read the cluster CA",
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        Self::from_ca_pem(&pem).map_err(|reason| TlsError::File {
            what: "the cluster CA",
            path: path.to_path_buf(),
            reason,
        })
    }

    /// Trusts the CA certificate(s) in this PEM text.
    pub fn from_ca_pem(pem: &[u8]) -> Result<Self, String> {
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(pem) {
            let cert = cert.map_err(|e| format!("not a PEM certificate: {e}"))?;
            roots
                .add(cert)
                .map_err(|e| format!("not a usable CA certificate: {e}"))?;
        }
        if roots.is_empty() {
            return Err("holds no certificate".into());
        }
        let config = rustls::ClientConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Connector(tokio_rustls::TlsConnector::from(Arc::new(
            config,
        ))))
    }

    /// Opens TLS on `tcp` to the server that must prove to be `name`.
    pub async fn connect(&self, name: &str, tcp: TcpStream) -> io::Result<Stream> {
        let server = ServerName::try_from(name.to_string())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("{name}: {e}")))?;
        let tls = tokio::time::timeout(OPENING_TIMEOUT, self.0.connect(server, tcp))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "TLS handshake timed out"))??;
        Ok(Stream::Client(Box::new(tls)))
    }
}

/// Serves an encrypted port with one certificate.
#[derive(Clone)]
pub struct Acceptor(tokio_rustls::TlsAcceptor);

impl Acceptor {
    /// The certificate chain and key in these PEM files.
    pub fn from_files(cert: &Path, key: &Path) -> Result<Self, TlsError> {
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
            .and_then(|certs| certs.collect::<Result<_, _>>())
            .map_err(|e| TlsError::File {
                what: "cannot read the certificate",
                path: cert.to_path_buf(),
                reason: e.to_string(),
            })?;
        let key = PrivateKeyDer::from_pem_file(key).map_err(|e| TlsError::File {
            what: "cannot read the private key",
            path: key.to_path_buf(),
            reason: e.to_string(),
        })?;
        Self::new(chain, key)
    }

    /// This chain and key.
    pub fn new(
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
    ) -> Result<Self, TlsError> {
        let config = rustls::ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(config_error)?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .map_err(config_error)?;
        Ok(Acceptor(tokio_rustls::TlsAcceptor::from(Arc::new(config))))
    }
}

/// A connection, encrypted or not.
pub enum Stream {
    /// Plain TCP.
    Plain(TcpStream),
    /// TLS, as the client.
    Client(Box<tokio_rustls::client::TlsStream<TcpStream>>),
    /// TLS, as the server.
    Server(Box<tokio_rustls::server::TlsStream<TcpStream>>),
    /// A link a node shapes itself ([`route`]): the node's end of a pipe in memory, whose other
    /// end the node's shaper carries on to the server (with TLS where the server is encrypted),
    /// and the server's address as the node was told it (where its datagrams go).
    Memory(tokio::io::DuplexStream, Option<std::net::SocketAddr>),
}

/// The reading half of a [`Stream`].
pub type Reader = Box<dyn AsyncRead + Send + Unpin>;
/// The writing half of a [`Stream`].
pub type Writer = Box<dyn AsyncWrite + Send + Unpin>;

impl Stream {
    /// Its two halves, to read and write from different tasks.
    pub fn split(self) -> (Reader, Writer) {
        match self {
            Stream::Plain(tcp) => {
                let (r, w) = tcp.into_split();
                (Box::new(r), Box::new(w))
            }
            Stream::Client(tls) => {
                let (r, w) = tokio::io::split(*tls);
                (Box::new(r), Box::new(w))
            }
            Stream::Server(tls) => {
                let (r, w) = tokio::io::split(*tls);
                (Box::new(r), Box::new(w))
            }
            Stream::Memory(pipe, _) => {
                let (r, w) = tokio::io::split(pipe);
                (Box::new(r), Box::new(w))
            }
        }
    }

    /// Whether it is encrypted.
    pub fn is_tls(&self) -> bool {
        matches!(self, Stream::Client(_) | Stream::Server(_))
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> io::Result<std::net::SocketAddr> {
        match self {
            Stream::Plain(tcp) => tcp.peer_addr(),
            Stream::Client(tls) => tls.get_ref().0.peer_addr(),
            Stream::Server(tls) => tls.get_ref().0.peer_addr(),
            Stream::Memory(_, told) => told.ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::NotConnected,
                    "the server's address is not an IP",
                )
            }),
        }
    }
}

/// What a connection to an encrypted port turned out to be.
pub enum Opening {
    /// Ready to carry lines (plain when the port is not encrypted).
    Ready(Stream),
    /// The peer spoke plaintext to an encrypted port: it was told so, and closed.
    Plaintext,
    /// It went before saying anything, or its handshake failed (why).
    Failed(String),
}

/// The error a plaintext peer of an encrypted port is sent.
pub const PLAINTEXT_REFUSED: &str = "this link is encrypted: connect with TLS 1.3 and check the \
    server against the cluster CA (the file TCLUSTER_CA names); plaintext is refused";

/// Whether a port that serves TLS takes plaintext peers too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plaintext {
    /// Plaintext peers are served as on a port without TLS.
    Served,
    /// Plaintext peers are refused.
    Refused,
}

/// Opens a connection a server accepted: with `acceptor`, a peer whose first byte opens a TLS
/// handshake gets one; any other peer is served in plaintext or refused, as `plaintext` says
/// ([`PLAINTEXT_REFUSED`], in its dialect: a JSON error after a JSON line, `ERROR:` otherwise).
pub async fn open(acceptor: Option<&Acceptor>, plaintext: Plaintext, tcp: TcpStream) -> Opening {
    let Some(acceptor) = acceptor else {
        return Opening::Ready(Stream::Plain(tcp));
    };
    let mut first = [0u8; 1];
    match tokio::time::timeout(OPENING_TIMEOUT, tcp.peek(&mut first)).await {
        Ok(Ok(1)) => {}
        Ok(Ok(_)) => return Opening::Failed("closed before saying anything".into()),
        Ok(Err(e)) => return Opening::Failed(e.to_string()),
        Err(_) => return Opening::Failed("said nothing".into()),
    }
    if first[0] != TLS_HANDSHAKE {
        if plaintext == Plaintext::Served {
            return Opening::Ready(Stream::Plain(tcp));
        }
        refuse_plaintext(tcp).await;
        return Opening::Plaintext;
    }
    match tokio::time::timeout(OPENING_TIMEOUT, acceptor.0.accept(tcp)).await {
        Ok(Ok(tls)) => Opening::Ready(Stream::Server(Box::new(tls))),
        Ok(Err(e)) => Opening::Failed(format!("TLS handshake failed: {e}")),
        Err(_) => Opening::Failed("TLS handshake timed out".into()),
    }
}

/// Answers a plaintext peer with [`PLAINTEXT_REFUSED`] in its dialect and closes.
async fn refuse_plaintext(mut tcp: TcpStream) {
    let mut start = [0u8; 512];
    let n = tokio::time::timeout(Duration::from_millis(200), tcp.read(&mut start))
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or(0);
    let native = String::from_utf8_lossy(&start[..n])
        .trim_start()
        .starts_with('{');
    let line = if native {
        serde_json::json!({"type": "error", "message": PLAINTEXT_REFUSED}).to_string()
    } else {
        format!("ERROR:{PLAINTEXT_REFUSED}")
    };
    let _ = tcp.write_all(format!("{line}\n").as_bytes()).await;
    let _ = tcp.shutdown().await;
    // Read what else comes for a moment, so the close does not reset the answer away.
    let _ = tokio::time::timeout(Duration::from_millis(300), async {
        let mut sink = [0u8; 1024];
        while matches!(tcp.read(&mut sink).await, Ok(n) if n > 0) {}
    })
    .await;
}

/// How to reach one encrypted server's address.
#[derive(Clone)]
struct Trust {
    /// The name its certificate must carry.
    name: String,
    connector: Connector,
}

/// The process's trust table: address (as dialed) → the encrypted server there.
static TABLE: LazyLock<RwLock<HashMap<String, Trust>>> = LazyLock::new(Default::default);

/// Addresses registered by [`trust`]; dropping this forgets them.
#[must_use = "the addresses are forgotten when this is dropped"]
#[derive(Default)]
pub struct Trusted(Vec<String>);

impl Trusted {
    /// Adds another registration to this one.
    pub fn and(mut self, other: Trusted) -> Self {
        self.0.extend(std::mem::take(&mut { other }.0));
        self
    }

    /// Keeps the registrations for the rest of the process's life.
    pub fn keep(mut self) {
        self.0.clear();
    }
}

impl Drop for Trusted {
    fn drop(&mut self) {
        if self.0.is_empty() {
            return;
        }
        let mut table = TABLE.write().unwrap_or_else(|e| e.into_inner());
        for addr in &self.0 {
            table.remove(addr);
        }
    }
}

/// Registers `addr` as the encrypted server `node`: dials to it from now on open TLS and check
/// its certificate (against `connector`'s CA) for [`server_name`]`(node)`.
pub fn trust(addr: &str, node: &str, connector: &Connector) -> Trusted {
    TABLE.write().unwrap_or_else(|e| e.into_inner()).insert(
        addr.to_string(),
        Trust {
            name: server_name(node),
            connector: connector.clone(),
        },
    );
    Trusted(vec![addr.to_string()])
}

/// Whether `addr` is registered as an encrypted server's.
pub fn is_trusted(addr: &str) -> bool {
    TABLE
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .contains_key(addr)
}

/// Connections the kernel completes and queues for a server before it accepts them: a burst
/// of connections (a class starting its workers, a flood) is queued rather than made to wait
/// for the clients' SYN retries, a second each (the system's `somaxconn` caps it).
const LISTEN_BACKLOG: u32 = 4096;

/// A listening socket on `addr` (`host:port`, port 0 for any), with a deep accept queue.
pub async fn listen(addr: &str) -> std::io::Result<tokio::net::TcpListener> {
    let mut last = None;
    for addr in tokio::net::lookup_host(addr).await? {
        let socket = if addr.is_ipv4() {
            tokio::net::TcpSocket::new_v4()?
        } else {
            tokio::net::TcpSocket::new_v6()?
        };
        socket.set_reuseaddr(true)?;
        match socket.bind(addr) {
            Ok(()) => return socket.listen(LISTEN_BACKLOG),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, "no address to listen on")
    }))
}

/// Connects to `addr` (`host:port`) with TLS, checking that the server there is `node`.
pub async fn dial_as(addr: &str, node: &str, connector: &Connector) -> io::Result<Stream> {
    let tcp = TcpStream::connect(addr).await?;
    let _ = tcp.set_nodelay(true);
    connector.connect(&server_name(node), tcp).await
}

/// The links this process shapes itself, by the address its node was told: a dial there is
/// handed to the shaper instead ([`route`]).
type Routes = HashMap<String, tokio::sync::mpsc::UnboundedSender<tokio::io::DuplexStream>>;
static ROUTES: LazyLock<RwLock<Routes>> = LazyLock::new(Default::default);

/// How much a link in memory buffers each way: what a socket's buffers would hold.
const MEMORY_LINK_BUFFER: usize = 256 * 1024;

/// Dials to `addr` from now on open a pipe in memory whose far end goes to `shaper`, which
/// carries it on to the server through the link's faults.
pub fn route(addr: &str, shaper: tokio::sync::mpsc::UnboundedSender<tokio::io::DuplexStream>) {
    ROUTES
        .write()
        .unwrap_or_else(|e| e.into_inner())
        .insert(addr.to_string(), shaper);
}

/// Connects to `addr` (`host:port`): through this process's own shaper if the link is one
/// ([`route`]), else with TLS if it is an encrypted server's ([`trust`]).
pub async fn dial(addr: &str) -> io::Result<Stream> {
    let routed = ROUTES
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .get(addr)
        .cloned();
    if let Some(shaper) = routed {
        let (near, far) = tokio::io::duplex(MEMORY_LINK_BUFFER);
        if shaper.send(far).is_ok() {
            return Ok(Stream::Memory(near, addr.parse().ok()));
        }
    }
    dial_direct(addr, addr).await
}

/// Connects to `target`, with TLS if `addr` is an encrypted server's ([`trust`]): `target` is
/// where the server `addr` names listens now.
pub async fn dial_direct(target: &str, addr: &str) -> io::Result<Stream> {
    let trust = TABLE
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .get(addr)
        .cloned();
    let tcp = TcpStream::connect(target).await?;
    let _ = tcp.set_nodelay(true);
    match trust {
        Some(t) => t.connector.connect(&t.name, tcp).await,
        None => Ok(Stream::Plain(tcp)),
    }
}

#[cfg(test)]
mod tests;
