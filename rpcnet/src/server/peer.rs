//! `Peer`: who is at the other end of a connection, learnt once when the connection is
//! accepted: its address and, under mutual TLS, the identity in its verified certificate
//! (parsed here, with `x509-parser`). Every call of the connection shares it.

use std::fmt::Write as _;
use std::net::SocketAddr;

use rustls::pki_types::CertificateDer;
use thiserror::Error;
use x509_parser::asn1_rs::ToDer;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::FromDer;
use x509_parser::x509::{AttributeTypeAndValue, X509Name};

/// The identity a client proved with its certificate under mutual TLS
/// ([`RpcConfig::with_client_ca_certificates`](crate::RpcConfig::with_client_ca_certificates)):
/// read from the certificate the server verified, so it cannot be claimed without the
/// matching private key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerIdentity {
    pub(crate) certificate: CertificateDer<'static>,
    pub(crate) subject: String,
    pub(crate) common_name: Option<String>,
    pub(crate) dns_names: Vec<String>,
    pub(crate) uris: Vec<String>,
}

/// Why a verified client certificate could not be read as a [`PeerIdentity`].
#[derive(Debug, Error, PartialEq, Eq)]
pub(crate) enum CertificateError {
    /// The DER is not an X.509 certificate x509-parser reads.
    #[error("not a readable X.509 certificate: {0}")]
    Unreadable(String),
    /// Bytes follow the certificate.
    #[error("{0} bytes follow the certificate")]
    TrailingBytes(usize),
    /// The subject alternative names are malformed or appear twice.
    #[error("unreadable subject alternative names: {0}")]
    AlternativeNames(String),
}

impl PeerIdentity {
    /// Reads the identity in an end-entity certificate: its subject, common name, and the
    /// DNS names and URIs among its subject alternative names (other kinds of name are
    /// left out). The certificate is not verified here: the TLS layer did that.
    pub(crate) fn from_certificate(certificate: CertificateDer<'static>) -> Result<Self, CertificateError> {
        let (rest, parsed) =
            X509Certificate::from_der(&certificate).map_err(|e| CertificateError::Unreadable(e.to_string()))?;
        if !rest.is_empty() {
            return Err(CertificateError::TrailingBytes(rest.len()));
        }
        let subject = rfc4514(parsed.subject());
        // Of several common names, the last (most specific) one, as most TLS stacks read it.
        let common_name =
            parsed.subject().iter_common_name().filter_map(|cn| cn.as_str().ok()).last().map(str::to_owned);
        let (mut dns_names, mut uris) = (Vec::new(), Vec::new());
        let names = parsed.subject_alternative_name().map_err(|e| CertificateError::AlternativeNames(e.to_string()))?;
        for name in names.iter().flat_map(|extension| &extension.value.general_names) {
            match name {
                GeneralName::DNSName(dns) => dns_names.push((*dns).to_owned()),
                GeneralName::URI(uri) => uris.push((*uri).to_owned()),
                _ => {}
            }
        }
        drop(parsed);
        Ok(Self { certificate, subject, common_name, dns_names, uris })
    }

    /// The certificate's subject, as an RFC 4514 string (`CN=billing,O=Example`: the most
    /// specific part first).
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// The subject's common name, if it has one (the last, if it has several).
    pub fn common_name(&self) -> Option<&str> {
        self.common_name.as_deref()
    }

    /// The DNS names among the certificate's subject alternative names.
    pub fn dns_names(&self) -> &[String] {
        &self.dns_names
    }

    /// The URIs among the certificate's subject alternative names (SPIFFE ids, for example).
    pub fn uris(&self) -> &[String] {
        &self.uris
    }

    /// The certificate as it was received (DER).
    pub fn certificate(&self) -> &CertificateDer<'static> {
        &self.certificate
    }

    /// Whether `name` is this identity's common name, one of its DNS names or one of its
    /// URIs (compared exactly).
    pub fn has_name(&self, name: &str) -> bool {
        self.common_name() == Some(name)
            || self.dns_names.iter().any(|dns| dns == name)
            || self.uris.iter().any(|uri| uri == name)
    }
}

/// A distinguished name as RFC 4514 writes it: the relative names in reverse order of the
/// certificate's sequence, separated by `,`; attributes of one relative name joined by `+`.
fn rfc4514(name: &X509Name<'_>) -> String {
    let mut out = String::new();
    let rdns: Vec<_> = name.iter_rdn().collect();
    for (i, rdn) in rdns.iter().rev().enumerate() {
        if i > 0 {
            out.push(',');
        }
        for (j, attribute) in rdn.iter().enumerate() {
            if j > 0 {
                out.push('+');
            }
            write_attribute(&mut out, attribute);
        }
    }
    out
}

/// `TYPE=value`: the short name of a common type, else its dotted OID; a string value
/// escaped, any other value as `#` and the hex of its DER (RFC 4514, section 2.4).
fn write_attribute(out: &mut String, attribute: &AttributeTypeAndValue<'_>) {
    let oid = attribute.attr_type().to_id_string();
    let short = match oid.as_str() {
        "2.5.4.3" => Some("CN"),
        "2.5.4.6" => Some("C"),
        "2.5.4.7" => Some("L"),
        "2.5.4.8" => Some("ST"),
        "2.5.4.9" => Some("STREET"),
        "2.5.4.10" => Some("O"),
        "2.5.4.11" => Some("OU"),
        "0.9.2342.19200300.100.1.1" => Some("UID"),
        "0.9.2342.19200300.100.1.25" => Some("DC"),
        _ => None,
    };
    match short {
        Some(short) => out.push_str(short),
        None => out.push_str(&oid),
    }
    out.push('=');
    match (short, attribute.as_str()) {
        (Some(_), Ok(value)) => escape_value(out, value),
        _ => {
            out.push('#');
            let der = attribute.attr_value().to_der_vec().unwrap_or_else(|_| attribute.as_slice().to_vec());
            for byte in der {
                let _ = write!(out, "{byte:02x}");
            }
        }
    }
}

/// Escapes a string value as RFC 4514 requires: its special characters anywhere, a space or
/// `#` in front, a space at the end, and NUL.
fn escape_value(out: &mut String, value: &str) {
    let last = value.chars().count().saturating_sub(1);
    for (i, c) in value.chars().enumerate() {
        match c {
            '"' | '+' | ',' | ';' | '<' | '>' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            ' ' if i == 0 || i == last => out.push_str("\\ "),
            '#' if i == 0 => out.push_str("\\#"),
            '\0' => out.push_str("\\00"),
            c => out.push(c),
        }
    }
}

/// The other end of one connection.
#[derive(Debug, Clone)]
pub(crate) struct Peer {
    pub(crate) address: SocketAddr,
    pub(crate) identity: Option<PeerIdentity>,
}

impl Peer {
    /// The peer of an accepted connection, its certificate read once for all its calls.
    pub(crate) fn of(connection: &quinn::Connection) -> Self {
        let address = connection.remote_address();
        let leaf = connection
            .peer_identity()
            .and_then(|identity| identity.downcast::<Vec<CertificateDer<'static>>>().ok())
            .and_then(|chain| chain.into_iter().next());
        let identity = leaf.and_then(|leaf| match PeerIdentity::from_certificate(leaf) {
            Ok(identity) => Some(identity),
            Err(err) => {
                // TLS verified it, so it is sound to serve the connection; an access policy
                // refuses a peer without an identity.
                tracing::warn!(%address, error = %err, "cannot read the identity in a client certificate");
                None
            }
        });
        Self { address, identity }
    }
}

#[cfg(test)]
mod tests {
    use rcgen::{CertificateParams, DnType, KeyPair, SanType};

    use super::*;

    fn certificate(params: CertificateParams) -> CertificateDer<'static> {
        let key = KeyPair::generate().unwrap();
        params.self_signed(&key).unwrap().der().clone()
    }

    #[test]
    fn the_identity_has_the_subject_common_name_dns_names_and_uris() {
        let mut params = CertificateParams::new(vec!["billing.internal".to_owned(), "billing".to_owned()]).unwrap();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.subject_alt_names.push(SanType::URI("spiffe://example.org/billing".try_into().unwrap()));
        params.subject_alt_names.push(SanType::IpAddress("10.0.0.1".parse().unwrap()));
        params.distinguished_name.push(DnType::OrganizationName, "Example");
        params.distinguished_name.push(DnType::CommonName, "billing");
        let der = certificate(params);
        let identity = PeerIdentity::from_certificate(der.clone()).unwrap();
        assert_eq!(identity.subject(), "CN=billing,O=Example", "most specific first");
        assert_eq!(identity.common_name(), Some("billing"));
        assert_eq!(identity.dns_names(), ["billing.internal", "billing"], "IP addresses are left out");
        assert_eq!(identity.uris(), ["spiffe://example.org/billing"]);
        assert_eq!(identity.certificate(), &der);
        assert!(identity.has_name("billing") && identity.has_name("spiffe://example.org/billing"));
        assert!(!identity.has_name("Example") && !identity.has_name("billing.internal."));
    }

    #[test]
    fn a_certificate_without_names_has_an_empty_identity() {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name = rcgen::DistinguishedName::new();
        let identity = PeerIdentity::from_certificate(certificate(params)).unwrap();
        assert_eq!((identity.subject(), identity.common_name()), ("", None));
        assert!(identity.dns_names().is_empty() && identity.uris().is_empty());
    }

    #[test]
    fn subject_values_are_escaped_as_rfc_4514_says() {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.distinguished_name.push(DnType::OrganizationName, " Acme, Inc. ");
        params.distinguished_name.push(DnType::CommonName, "#a+b");
        let identity = PeerIdentity::from_certificate(certificate(params)).unwrap();
        assert_eq!(identity.subject(), r"CN=\#a\+b,O=\ Acme\, Inc.\ ");
        assert_eq!(identity.common_name(), Some("#a+b"), "the common name itself is not escaped");
    }

    #[test]
    fn bytes_that_are_no_certificate_or_trail_one_are_errors() {
        let garbage = CertificateDer::from(vec![0x30, 0x03, 0x02, 0x01, 0x01]);
        assert!(matches!(PeerIdentity::from_certificate(garbage), Err(CertificateError::Unreadable(_))));
        let mut bytes = certificate(CertificateParams::new(vec!["a".to_owned()]).unwrap()).to_vec();
        bytes.extend_from_slice(&[0, 0]);
        let trailing = PeerIdentity::from_certificate(CertificateDer::from(bytes));
        assert_eq!(trailing, Err(CertificateError::TrailingBytes(2)));
    }
}
