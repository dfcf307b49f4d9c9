//! The cluster's certificates: a CA made at the first launch that needs one, and a certificate
//! per encrypted server, signed by it.
//!
//! ```text
//! STATE_DIR/tls/
//!   ca.pem  ca.key             the cluster CA (kept across runs: outside programs trust it)
//!   coordinator.pem  .key      one per encrypted server, issued afresh at each launch
//! ```
//!
//! A topology that names its own certificates (`set TLS_DIR "certs"`) is used as it is: the
//! directory holds `ca.pem`, and `NODE.pem` with `NODE.key` for every encrypted server.
//!
//! A server's certificate names it ([`super::server_name`]), its address, and this machine
//! (`localhost`, `127.0.0.1`, `::1`), so a peer may check it by node name or by the address it
//! dialed.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};

use super::{Acceptor, Connector, TlsError, TlsFiles};
use crate::topology::Topology;

/// The directory under the state directory where tcluster keeps the certificates it makes.
pub const DIR: &str = "tls";
/// The CA certificate's file name.
pub const CA_FILE: &str = "ca.pem";
const CA_KEY_FILE: &str = "ca.key";

/// Where a cluster's certificates are.
#[derive(Debug, Clone, PartialEq)]
pub struct Pki {
    /// The directory.
    pub dir: PathBuf,
}

impl Pki {
    /// The certificates of `topology`'s encrypted servers, made (or found, with `TLS_DIR`) now;
    /// `None` when no link is encrypted.
    pub fn prepare(topology: &Topology, state_dir: &Path) -> Result<Option<Pki>, TlsError> {
        let servers: Vec<_> = topology.encrypted_servers().collect();
        if servers.is_empty() {
            return Ok(None);
        }
        let pki = Pki::located(topology, state_dir);
        if topology.globals.tls_dir.is_some() {
            let mut needed = vec![pki.ca()];
            for s in &servers {
                needed.extend([pki.cert(&s.name), pki.key(&s.name)]);
            }
            for path in needed {
                if !path.is_file() {
                    return Err(TlsError::File {
                        what: "TLS_DIR has no",
                        path,
                        reason: "an encrypted server needs it (see docs/TOPOLOGY.md, TLS_DIR)"
                            .into(),
                    });
                }
            }
            return Ok(Some(pki));
        }
        std::fs::create_dir_all(&pki.dir).map_err(|e| TlsError::File {
            what: "cannot create",
            path: pki.dir.clone(),
            reason: e.to_string(),
        })?;
        let (ca_params, ca_key) = pki.ca_of_this_cluster()?;
        let issuer = Issuer::new(ca_params, ca_key);
        for server in servers {
            let key = KeyPair::generate().map_err(generation)?;
            let cert = node_params(&server.name, &server.address)?
                .signed_by(&key, &issuer)
                .map_err(generation)?;
            write(&pki.cert(&server.name), &cert.pem(), false)?;
            write(&pki.key(&server.name), &key.serialize_pem(), true)?;
        }
        Ok(Some(pki))
    }

    /// Where `topology`'s certificates are: its `TLS_DIR`, else `tls/` under the state directory.
    pub fn located(topology: &Topology, state_dir: &Path) -> Pki {
        Pki {
            dir: match &topology.globals.tls_dir {
                Some(dir) => PathBuf::from(dir),
                None => state_dir.join(DIR),
            },
        }
    }

    /// The CA certificate.
    pub fn ca(&self) -> PathBuf {
        self.dir.join(CA_FILE)
    }

    /// `node`'s certificate.
    pub fn cert(&self, node: &str) -> PathBuf {
        self.dir.join(format!("{}.pem", file_stem(node)))
    }

    /// `node`'s private key.
    pub fn key(&self, node: &str) -> PathBuf {
        self.dir.join(format!("{}.key", file_stem(node)))
    }

    /// The files `node` is handed: the CA, and its own certificate if it serves an encrypted
    /// port.
    pub fn files(&self, topology: &Topology, node: &str) -> TlsFiles {
        let serves = topology.encrypted(node);
        TlsFiles {
            ca: Some(self.ca()),
            cert: serves.then(|| self.cert(node)),
            key: serves.then(|| self.key(node)),
        }
    }

    /// Checks servers against this CA.
    pub fn connector(&self) -> Result<Connector, TlsError> {
        Connector::from_ca_file(&self.ca())
    }

    /// Serves as `node`.
    pub fn acceptor(&self, node: &str) -> Result<Acceptor, TlsError> {
        Acceptor::from_files(&self.cert(node), &self.key(node))
    }

    /// The CA's parameters and key: read back if this directory has one, else made now.
    fn ca_of_this_cluster(&self) -> Result<(CertificateParams, KeyPair), TlsError> {
        let key_path = self.dir.join(CA_KEY_FILE);
        let params = ca_params();
        if self.ca().is_file() && key_path.is_file() {
            let pem = std::fs::read_to_string(&key_path).map_err(|e| TlsError::File {
                what: "cannot read the cluster CA's key",
                path: key_path.clone(),
                reason: e.to_string(),
            })?;
            let key = KeyPair::from_pem(&pem).map_err(|e| TlsError::File {
                what: "the cluster CA's key",
                path: key_path,
                reason: e.to_string(),
            })?;
            return Ok((params, key));
        }
        let key = KeyPair::generate().map_err(generation)?;
        let cert = params.self_signed(&key).map_err(generation)?;
        write(&key_path, &key.serialize_pem(), true)?;
        write(&self.ca(), &cert.pem(), false)?;
        Ok((params, key))
    }
}

/// The CA's parameters: the same at every launch, so that a CA read back from its key issues
/// certificates that chain to the CA certificate kept beside it.
fn ca_params() -> CertificateParams {
    let mut params = CertificateParams::default();
    params
        .distinguished_name
        .push(DnType::CommonName, "tcluster cluster CA");
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.not_before = rcgen::date_time_ymd(2024, 1, 1);
    params.not_after = rcgen::date_time_ymd(2124, 1, 1);
    params
}

/// A server's certificate parameters: its name, its address, and this machine.
fn node_params(node: &str, address: &str) -> Result<CertificateParams, TlsError> {
    let mut names = vec![super::server_name(node), "localhost".to_string()];
    if address.parse::<std::net::IpAddr>().is_err() && !names.iter().any(|n| n == address) {
        names.push(address.to_string());
    }
    let mut params = CertificateParams::new(names).map_err(generation)?;
    let mut ips: Vec<std::net::IpAddr> = vec![
        std::net::Ipv4Addr::LOCALHOST.into(),
        std::net::Ipv6Addr::LOCALHOST.into(),
    ];
    if let Ok(ip) = address.parse()
        && !ips.contains(&ip)
    {
        ips.push(ip);
    }
    params
        .subject_alt_names
        .extend(ips.into_iter().map(SanType::IpAddress));
    params.distinguished_name.push(DnType::CommonName, node);
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.not_before = rcgen::date_time_ymd(2024, 1, 1);
    params.not_after = rcgen::date_time_ymd(2124, 1, 1);
    Ok(params)
}

fn generation(e: rcgen::Error) -> TlsError {
    TlsError::Config(format!("cannot make a certificate: {e}"))
}

/// A file name for `node`'s certificate: its name, with anything a path could misread replaced.
fn file_stem(node: &str) -> String {
    node.chars()
        .map(|c| {
            if c.is_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Writes `text` to `path`; `secret` files are readable by their owner only.
fn write(path: &Path, text: &str, secret: bool) -> Result<(), TlsError> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    if secret {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options
        .open(path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .map_err(|e| TlsError::File {
            what: "cannot write",
            path: path.to_path_buf(),
            reason: e.to_string(),
        })
}
