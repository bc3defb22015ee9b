//! TLS for `wss://`: rustls with the ring provider, configured from PEM
//! files. Every problem with a file is reported naming that file, so a
//! misconfigured deployment fails at start-up with one clear line.
//!
//! Behind the `server` or `cli` feature.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures_rustls::pki_types::CertificateDer;
#[cfg(feature = "server")]
use futures_rustls::pki_types::PrivateKeyDer;
use futures_rustls::pki_types::pem::{self, PemObject};
use futures_rustls::rustls::{self, crypto::CryptoProvider};

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The file could not be opened or read.
    #[error("cannot read the {what} {}", path.display())]
    Read {
        what: &'static str,
        path: PathBuf,
        #[source]
        error: io::Error,
    },
    /// The file holds no PEM section of the kind needed.
    #[error("no {what} in {} (expected PEM: {expected})", path.display())]
    Missing {
        what: &'static str,
        path: PathBuf,
        expected: &'static str,
    },
    /// The file is not well-formed PEM.
    #[error("the {what} {} is not valid PEM: {reason}", path.display())]
    Malformed {
        what: &'static str,
        path: PathBuf,
        reason: &'static str,
    },
    /// The private key is not the certificate's.
    #[error("the TLS key {} does not match the certificate {}", key.display(), cert.display())]
    KeyMismatch { cert: PathBuf, key: PathBuf },
    /// rustls refused what the file holds (a malformed certificate, a key
    /// of an unsupported type…).
    #[error("cannot use the {what} {}", path.display())]
    Rejected {
        what: &'static str,
        path: PathBuf,
        #[source]
        error: rustls::Error,
    },
    /// rustls cannot set up the ring provider for its default TLS versions
    /// (never seen; ring supports them all).
    #[error("cannot set up TLS")]
    Provider(#[source] rustls::Error),
}

const CERTIFICATE: &str = "-----BEGIN CERTIFICATE-----";

/// The ring provider, named rather than taken from rustls's process-wide
/// default, which panics if feature unification ever enables a second one.
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The server side of `wss://`: the certificate chain in `cert` (the
/// server's own certificate first, then intermediates) and its private key
/// in `key` (PKCS#8, PKCS#1 RSA or SEC1 EC; the first key in the file).
#[cfg(feature = "server")]
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    const WHAT: &str = "TLS key";
    let chain = certificates(cert, "TLS certificate")?;
    let private_key = PrivateKeyDer::from_pem_file(key).map_err(|error| match error {
        pem::Error::NoItemsFound => TlsError::Missing {
            what: "private key",
            path: key.to_owned(),
            expected: "-----BEGIN PRIVATE KEY-----, RSA PRIVATE KEY or EC PRIVATE KEY",
        },
        error => pem_error(WHAT, key, error),
    })?;
    let config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(TlsError::Provider)?
        .with_no_client_auth()
        .with_single_cert(chain, private_key)
        .map_err(|error| match error {
            rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch) => {
                TlsError::KeyMismatch {
                    cert: cert.to_owned(),
                    key: key.to_owned(),
                }
            }
            // The certificate's own encoding is checked while matching it
            // with the key.
            rustls::Error::InvalidCertificate(_) => TlsError::Rejected {
                what: "TLS certificate",
                path: cert.to_owned(),
                error,
            },
            error => TlsError::Rejected {
                what: WHAT,
                path: key.to_owned(),
                error,
            },
        })?;
    Ok(Arc::new(config))
}

/// The client side of `wss://`: trusts the web PKI's root certificates
/// (bundled, from webpki-roots) and, if given, every certificate in
/// `ca_file`, which may be a private CA's or a self-signed server's own.
#[cfg(feature = "cli")]
pub fn client_config(ca_file: Option<&Path>) -> Result<Arc<rustls::ClientConfig>, TlsError> {
    const WHAT: &str = "CA certificate";
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    if let Some(path) = ca_file {
        for cert in certificates(path, WHAT)? {
            roots.add(cert).map_err(|error| TlsError::Rejected {
                what: WHAT,
                path: path.to_owned(),
                error,
            })?;
        }
    }
    let config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(TlsError::Provider)?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Every certificate in the PEM file at `path`, at least one.
pub fn certificates(
    path: &Path,
    what: &'static str,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let chain = CertificateDer::pem_file_iter(path)
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        .map_err(|error| pem_error(what, path, error))?;
    if chain.is_empty() {
        return Err(TlsError::Missing {
            what: "certificate",
            path: path.to_owned(),
            expected: CERTIFICATE,
        });
    }
    Ok(chain)
}

/// pki-types describes PEM errors with the raw bytes of the offending line;
/// a short reason reads better in a one-line error.
fn pem_error(what: &'static str, path: &Path, error: pem::Error) -> TlsError {
    let reason = match error {
        pem::Error::Io(error) => {
            return TlsError::Read {
                what,
                path: path.to_owned(),
                error,
            };
        }
        pem::Error::MissingSectionEnd { .. } => "a section has no -----END line",
        pem::Error::IllegalSectionStart { .. } => "a -----BEGIN line is malformed",
        pem::Error::Base64Decode(_) => "a section is not valid base64",
        pem::Error::SectionTooLarge => "a section is too large",
        pem::Error::NoItemsFound => "nothing found",
        _ => "unreadable",
    };
    TlsError::Malformed {
        what,
        path: path.to_owned(),
        reason,
    }
}

#[cfg(all(test, feature = "server", feature = "cli"))]
mod tests {
    use std::fs;

    use super::*;

    fn fixture(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/tls")
            .join(name)
    }

    /// A fresh self-signed certificate and its PKCS#8 key, as PEM files.
    fn self_signed(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
        let made = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
        let cert = dir.join(format!("{name}-cert.pem"));
        let key = dir.join(format!("{name}-key.pem"));
        fs::write(&cert, made.cert.pem()).unwrap();
        fs::write(&key, made.signing_key.serialize_pem()).unwrap();
        (cert, key)
    }

    #[test]
    fn pkcs8_rsa_and_sec1_keys_all_load() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = self_signed(dir.path(), "p8");
        assert!(
            fs::read_to_string(&key)
                .unwrap()
                .contains("BEGIN PRIVATE KEY")
        );
        server_config(&cert, &key).unwrap();
        server_config(&fixture("rsa-cert.pem"), &fixture("rsa-key.pem")).unwrap();
        server_config(&fixture("ec-cert.pem"), &fixture("ec-key.pem")).unwrap();

        // One file holding the chain and the key serves as both.
        let both = dir.path().join("both.pem");
        let pem = fs::read_to_string(&cert).unwrap() + &fs::read_to_string(&key).unwrap();
        fs::write(&both, pem).unwrap();
        server_config(&both, &both).unwrap();
    }

    #[test]
    fn every_bad_file_is_named_in_a_one_line_error() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = self_signed(dir.path(), "good");
        let (_, other_key) = self_signed(dir.path(), "other");
        let missing = dir.path().join("missing.pem");
        let garbage = dir.path().join("garbage.pem");
        fs::write(&garbage, "not a key\n").unwrap();
        let truncated = dir.path().join("truncated.pem");
        let key_pem = fs::read_to_string(&key).unwrap();
        fs::write(&truncated, &key_pem[..key_pem.len() / 2]).unwrap();

        let cases = [
            (&cert, &missing, &missing, "cannot read the TLS key"),
            (&missing, &key, &missing, "cannot read the TLS certificate"),
            (&cert, &garbage, &garbage, "no private key in"),
            (&garbage, &key, &garbage, "no certificate in"),
            (&key, &key, &key, "no certificate in"),
            (&cert, &truncated, &truncated, "is not valid PEM"),
            (
                &cert,
                &other_key,
                &other_key,
                "does not match the certificate",
            ),
            (&cert, &fixture("ec-key.pem"), &cert, "does not match"),
        ];
        for (cert, key, named, expected) in cases {
            let error = server_config(cert, key).unwrap_err();
            // As chat-server prints it: the error and its causes.
            let mut line = error.to_string();
            let mut source = std::error::Error::source(&error);
            while let Some(cause) = source {
                line = format!("{line}: {cause}");
                source = cause.source();
            }
            assert!(line.contains(expected), "{cert:?} {key:?}: {line}");
            assert!(line.contains(&named.display().to_string()), "{line}");
            assert!(!line.contains('\n'), "{line}");
        }
    }

    #[test]
    fn the_client_loads_a_ca_file_and_names_a_bad_one() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = self_signed(dir.path(), "ca");
        client_config(None).unwrap();
        client_config(Some(&cert)).unwrap(); // whether it is trusted: tests/tls.rs

        let error = client_config(Some(&key)).unwrap_err();
        assert!(matches!(error, TlsError::Missing { .. }), "{error}");
        assert!(error.to_string().contains(&key.display().to_string()));
        let missing = dir.path().join("nope.pem");
        let error = client_config(Some(&missing)).unwrap_err();
        assert!(matches!(error, TlsError::Read { .. }), "{error}");
    }
}
