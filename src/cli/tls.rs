//! `wss://` for chat-cli: which certificates it trusts, and the TLS
//! handshake, with its failures put in words that say what to do.

use std::io;
use std::path::Path;
use std::sync::{Arc, OnceLock};

use futures_rustls::TlsConnector;
use futures_rustls::client::TlsStream;
use futures_rustls::pki_types::ServerName;
use futures_rustls::rustls::{self, CertificateError, ClientConfig};
use smol::net::TcpStream;

use crate::tls::{self, TlsError};

/// What every `wss://` connection of this process trusts. Set once, at
/// start-up (see [`trust`]); reconnections reuse it.
static TRUST: OnceLock<Arc<ClientConfig>> = OnceLock::new();

/// Makes `wss://` trust the web PKI's root certificates and, if given, the
/// certificates in `ca_file` (a private CA's, or a self-signed server's
/// own). Call it before the first connection; without it, only the web
/// PKI is trusted. The first call wins.
pub fn trust(ca_file: Option<&Path>) -> Result<(), TlsError> {
    let config = tls::client_config(ca_file)?;
    let _ = TRUST.set(config);
    Ok(())
}

fn config() -> Result<Arc<ClientConfig>, TlsError> {
    if let Some(config) = TRUST.get() {
        return Ok(config.clone());
    }
    let config = tls::client_config(None)?;
    Ok(TRUST.get_or_init(|| config).clone())
}

/// Runs the TLS handshake with `host` over `tcp`; the error in words.
pub(crate) async fn connect(host: &str, tcp: TcpStream) -> Result<TlsStream<TcpStream>, String> {
    let config = config().map_err(|e| e.to_string())?;
    let name = ServerName::try_from(host.to_owned())
        .map_err(|_| format!("'{host}' is not a valid TLS server name"))?;
    TlsConnector::from(config)
        .connect(name, tcp)
        .await
        .map_err(|error| describe(&error, host))
}

fn describe(error: &io::Error, host: &str) -> String {
    let Some(tls) = error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    else {
        return format!("TLS handshake failed: {error}");
    };
    match tls {
        rustls::Error::InvalidCertificate(
            CertificateError::UnknownIssuer | CertificateError::BadSignature,
        ) => "the server's certificate is not signed by an authority chat-cli trusts; \
              if it is self-signed or from a private CA, pass that certificate \
              (PEM) with --ca-file FILE"
            .to_owned(),
        rustls::Error::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
        ) => format!(
            "the server's certificate is not valid for '{host}'; connect with a name \
             (or address) that the certificate lists"
        ),
        rustls::Error::InvalidCertificate(
            CertificateError::Expired | CertificateError::ExpiredContext { .. },
        ) => "the server's certificate has expired".to_owned(),
        // What `openssl req -x509` makes unless told CA:FALSE; webpki's
        // error is only reachable as text.
        rustls::Error::InvalidCertificate(CertificateError::Other(other))
            if other.to_string().contains("CaUsedAsEndEntity") =>
        {
            "the server's certificate is a CA certificate (CA:TRUE), which TLS \
             refuses as a server's own; give the server a certificate made with \
             CA:FALSE"
                .to_owned()
        }
        rustls::Error::InvalidCertificate(_) => {
            format!("the server's certificate is not acceptable: {tls}")
        }
        // What a plain-text answer looks like to TLS.
        rustls::Error::InvalidMessage(rustls::InvalidMessage::InvalidContentType) => {
            "the server does not speak TLS; try ws:// instead of wss://".to_owned()
        }
        _ => format!("TLS handshake failed: {tls}"),
    }
}
