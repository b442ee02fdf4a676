//! TLS for `airlock serve`: a certificate and key given as PEM files, or a CA and a server
//! certificate that airlock makes once in a directory (`--tls-self-signed DIR`) and reuses.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

/// Where the server's certificate comes from.
#[derive(Clone, Debug)]
pub enum TlsSource {
    /// `--tls-cert FILE --tls-key FILE`.
    Files { cert: PathBuf, key: PathBuf },
    /// `--tls-self-signed DIR`: `ca.pem`, `server.pem`, `server-key.pem` (made when absent).
    SelfSigned(PathBuf),
}

/// Why TLS cannot be set up: each message names the file or directory and the flag that
/// fixes it.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// `--tls-self-signed DIR` cannot be made absolute.
    #[error("{}: {source}", dir.display())]
    Dir { dir: PathBuf, source: std::io::Error },
    #[error("cannot read the TLS certificate {}: {source}; give a PEM file with --tls-cert", path.display())]
    ReadCert { path: PathBuf, source: rustls::pki_types::pem::Error },
    #[error("no certificate in {}: give a PEM file with --tls-cert", path.display())]
    NoCert { path: PathBuf },
    #[error("cannot read the TLS key {}: {source}; give a PEM private key with --tls-key", path.display())]
    ReadKey { path: PathBuf, source: rustls::pki_types::pem::Error },
    /// The crypto provider supports none of the safe protocol versions.
    #[error(transparent)]
    Protocols(rustls::Error),
    #[error("the TLS certificate {} and its key do not go together: {source}", cert.display())]
    Mismatch { cert: PathBuf, key: PathBuf, source: rustls::Error },
    /// A CA without its server certificate and key: making new ones would need a new CA.
    #[error(
        "{} holds ca.pem but not server.pem and server-key.pem: remove the directory to make a new CA (clients must trust it again)",
        dir.display()
    )]
    Incomplete { dir: PathBuf },
    #[error("cannot make the self-signed certificates: {source}")]
    Generate { source: rcgen::Error },
    #[error("cannot create {}: {source}", dir.display())]
    CreateDir { dir: PathBuf, source: std::io::Error },
    #[error("cannot write {}: {source}", path.display())]
    Write { path: PathBuf, source: std::io::Error },
}

/// The acceptor for every listener, and for a self-signed setup the CA clients must trust.
pub fn acceptor(source: &TlsSource, bind: IpAddr) -> Result<(TlsAcceptor, Option<PathBuf>), TlsError> {
    let (cert, key, ca) = match source {
        TlsSource::Files { cert, key } => (cert.clone(), key.clone(), None),
        TlsSource::SelfSigned(dir) => {
            // Absolute, so the hint printed at startup can be pasted anywhere.
            let dir = std::path::absolute(dir).map_err(|source| TlsError::Dir { dir: dir.clone(), source })?;
            make_self_signed(&dir, bind)?;
            (dir.join("server.pem"), dir.join("server-key.pem"), Some(dir.join("ca.pem")))
        }
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cert)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|source| TlsError::ReadCert { path: cert.clone(), source })?;
    if certs.is_empty() {
        return Err(TlsError::NoCert { path: cert });
    }
    let key_der = PrivateKeyDer::from_pem_file(&key).map_err(|source| TlsError::ReadKey { path: key.clone(), source })?;
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(TlsError::Protocols)?
        .with_no_client_auth()
        .with_single_cert(certs, key_der)
        .map_err(|source| TlsError::Mismatch { cert: cert.clone(), key: key.clone(), source })?;
    Ok((TlsAcceptor::from(Arc::new(config)), ca))
}

/// Makes a CA and a server certificate it signs, for localhost, this host's names and
/// addresses (and `bind`), unless the directory already holds them.
fn make_self_signed(dir: &Path, bind: IpAddr) -> Result<(), TlsError> {
    let (ca_pem, server_pem, server_key) = (dir.join("ca.pem"), dir.join("server.pem"), dir.join("server-key.pem"));
    if ca_pem.is_file() && server_pem.is_file() && server_key.is_file() {
        return Ok(());
    }
    if ca_pem.exists() {
        return Err(TlsError::Incomplete { dir: dir.to_path_buf() });
    }
    let bad = |source: rcgen::Error| TlsError::Generate { source };
    let facts = airlock_base::facts::gather();
    let mut names: Vec<String> = vec!["localhost".into(), "127.0.0.1".into(), "::1".into()];
    for k in ["hostname", "fqdn"] {
        names.extend(facts.get(k).and_then(|v| v.as_str()).filter(|s| !s.is_empty()).map(str::to_string));
    }
    for k in ["all_ipv4_addresses", "all_ipv6_addresses"] {
        names.extend(facts.get(k).and_then(|v| v.as_array()).into_iter().flatten().filter_map(|v| v.as_str()).map(str::to_string));
    }
    if !bind.is_unspecified() {
        names.push(bind.to_string());
    }
    names.dedup();
    let mut seen = std::collections::HashSet::new();
    names.retain(|n| seen.insert(n.clone()));

    let ca_key = rcgen::KeyPair::generate().map_err(bad)?;
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(bad)?;
    ca_params.distinguished_name.push(rcgen::DnType::CommonName, "airlock mirror CA");
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign, rcgen::KeyUsagePurpose::CrlSign];
    let (ny, nm, nd) = today();
    ca_params.not_before = rcgen::date_time_ymd(ny, nm, nd);
    ca_params.not_after = rcgen::date_time_ymd(ny + 10, nm, nd.min(28));
    let ca = ca_params.self_signed(&ca_key).map_err(bad)?;
    let issuer = rcgen::Issuer::new(ca_params, &ca_key);

    let key = rcgen::KeyPair::generate().map_err(bad)?;
    let mut params = rcgen::CertificateParams::new(names.clone()).map_err(bad)?;
    params.distinguished_name.push(rcgen::DnType::CommonName, "airlock mirror");
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    params.not_before = rcgen::date_time_ymd(ny, nm, nd);
    params.not_after = rcgen::date_time_ymd(ny + 2, nm, nd.min(28));
    let cert = params.signed_by(&key, &issuer).map_err(bad)?;

    std::fs::create_dir_all(dir).map_err(|source| TlsError::CreateDir { dir: dir.to_path_buf(), source })?;
    write_private(&dir.join("ca-key.pem"), &ca_key.serialize_pem())?;
    write_private(&server_key, &key.serialize_pem())?;
    write(&server_pem, &format!("{}{}", cert.pem(), ca.pem()))?;
    // The CA last: its presence means the set is complete.
    write(&ca_pem, &ca.pem())?;
    eprintln!("airlock serve: made a CA and a server certificate in {} for {}", dir.display(), names.join(", "));
    Ok(())
}

/// Today's date (UTC), for the certificates' validity.
fn today() -> (i32, u8, u8) {
    let s = airlock_content::archive::manifest::rfc3339_utc(std::time::SystemTime::now());
    let n = |r: std::ops::Range<usize>| s.get(r).and_then(|x| x.parse::<i32>().ok()).unwrap_or(1);
    (n(0..4), n(5..7) as u8, n(8..10) as u8)
}

fn write(path: &Path, text: &str) -> Result<(), TlsError> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).and_then(|()| std::fs::rename(&tmp, path)).map_err(|source| TlsError::Write { path: path.to_path_buf(), source })
}

fn write_private(path: &Path, text: &str) -> Result<(), TlsError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|source| TlsError::Write { path: path.to_path_buf(), source })
}

/// How clients trust the CA, printed at startup.
pub fn trust_hint(ca: &Path) -> String {
    let c = ca.display();
    format!(
        "clients trust the mirrors with {c}:\n\
         \x20 EL/Rocky:      cp {c} /etc/pki/ca-trust/source/anchors/airlock-mirror-ca.pem && update-ca-trust\n\
         \x20 Debian/Ubuntu: cp {c} /usr/local/share/ca-certificates/airlock-mirror-ca.crt && update-ca-certificates\n\
         \x20 Docker:        /etc/docker/certs.d/<mirror>:<registry port>/ca.crt; containerd: ca = \"{c}\" in certs.d/<mirror>:<port>/hosts.toml\n\
         \x20 pip: --cert {c}   helm: helm repo add --ca-file {c}   curl: --cacert {c}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_file_and_the_flag() {
        let d = tempfile::tempdir().unwrap();
        let bind = IpAddr::from([127, 0, 0, 1]);
        let (cert, key) = (d.path().join("cert.pem"), d.path().join("key.pem"));
        let files = TlsSource::Files { cert: cert.clone(), key: key.clone() };
        let e = acceptor(&files, bind).err().unwrap();
        assert!(matches!(&e, TlsError::ReadCert { path, .. } if *path == cert), "{e:?}");
        let text = e.to_string();
        assert!(text.starts_with(&format!("cannot read the TLS certificate {}: ", cert.display())), "{text}");
        assert!(text.ends_with("; give a PEM file with --tls-cert"), "{text}");
        std::fs::write(&cert, "").unwrap();
        assert_eq!(acceptor(&files, bind).err().unwrap().to_string(), format!("no certificate in {}: give a PEM file with --tls-cert", cert.display()));
        let dir = d.path().join("ca");
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("ca.pem"), "").unwrap();
        assert_eq!(
            acceptor(&TlsSource::SelfSigned(dir.clone()), bind).err().unwrap().to_string(),
            format!(
                "{} holds ca.pem but not server.pem and server-key.pem: remove the directory to make a new CA (clients must trust it again)",
                dir.display()
            )
        );
    }
}
