//! TLS: the client-certificate verifier, the server-certificate resolver, and the server configurations.
//!
//! The TLS layer only establishes *possession*: the client proves it holds the key of the certificate it sent
//! (the handshake signature is verified). Whether that certificate may connect is decided after the handshake,
//! from the registry, because a certificate's acceptability changes at runtime (revocation, JIT registration of
//! certificates from CAs that are registered later), and a TLS alert cannot carry a reason while a CONNACK can.
//! A registered certificate needs no chain check: its id is the SHA-256 of its whole DER, and it was verified
//! against its CA when it was registered.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{
    DigitallySignedStruct, DistinguishedName, PeerMisbehaved, ServerConfig, SignatureScheme,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, SubjectPublicKeyInfoDer, UnixTime};

use crate::GatewayError;
use crate::registry::Registry;

/// The ALPN protocol AWS IoT uses for MQTT with client certificates on port 443.
pub const ALPN_MQTT_CA: &[u8] = b"x-amzn-mqtt-ca";

/// Accepts any well-formed client certificate; verifies the handshake signature with the provider's algorithms.
///
/// X.509 v3 certificates go through webpki. webpki refuses anything older, yet `openssl x509 -req -CA ...`
/// without an extension file issues v1 certificates, which is how AWS's walkthroughs make device certificates
/// under a customer CA; AWS IoT accepts them. For those the key is taken from the certificate with the `pki`
/// parser and the signature is verified over that bare key by webpki's raw-public-key path: the same
/// algorithms, scheme mapping and key-type checks as for v3, only the certificate parsing differs. So every
/// scheme in `supported_verify_schemes` is verifiable for both kinds, and possession of the key is always proven.
#[derive(Debug)]
struct AnyClientCert {
    algs: WebPkiSupportedAlgorithms,
}

/// Where the handshake signature is verified for a client certificate.
enum ClientKey<'a> {
    /// A certificate webpki accepts (X.509 v3).
    WebPki,
    /// An older certificate: its SubjectPublicKeyInfo, parsed by webpki as a raw public key.
    Legacy(SubjectPublicKeyInfoDer<'a>),
}

fn bad_encoding() -> rustls::Error {
    rustls::Error::InvalidCertificate(rustls::CertificateError::BadEncoding)
}

/// Decides how `cert`'s handshake signature is checked; an error if it is not a certificate we accept at all.
fn client_key<'a>(cert: &'a CertificateDer<'_>) -> Result<ClientKey<'a>, rustls::Error> {
    if webpki::EndEntityCert::try_from(cert).is_ok() {
        return Ok(ClientKey::WebPki);
    }
    // Only the version is a reason to bypass webpki's parsing: a v3 certificate webpki refuses is malformed.
    let parsed = pki::Certificate::from_der(cert).map_err(|_| bad_encoding())?;
    if parsed.version() >= 3 {
        return Err(bad_encoding());
    }
    let spki = SubjectPublicKeyInfoDer::from(parsed.spki_der().to_vec());
    webpki::RawPublicKeyEntity::try_from(&spki).map_err(|_| bad_encoding())?;
    Ok(ClientKey::Legacy(spki))
}

/// Maps webpki's signature errors as rustls does for the certificates it parses itself.
fn signature_error(e: webpki::Error) -> rustls::Error {
    use rustls::CertificateError as E;
    let e = match e {
        webpki::Error::InvalidSignatureForPublicKey => E::BadSignature,
        webpki::Error::UnsupportedSignatureAlgorithmContext(cx) => {
            E::UnsupportedSignatureAlgorithmContext {
                signature_algorithm_id: cx.signature_algorithm_id,
                supported_algorithms: cx.supported_algorithms,
            }
        }
        webpki::Error::UnsupportedSignatureAlgorithmForPublicKeyContext(cx) => {
            E::UnsupportedSignatureAlgorithmForPublicKeyContext {
                signature_algorithm_id: cx.signature_algorithm_id,
                public_key_algorithm_id: cx.public_key_algorithm_id,
            }
        }
        other => E::Other(rustls::OtherError(Arc::new(other))),
    };
    rustls::Error::InvalidCertificate(e)
}

impl AnyClientCert {
    /// Verifies a TLS 1.2 handshake signature over a bare public key, as `rustls::crypto::verify_tls12_signature`
    /// does over a certificate's: every algorithm the scheme maps to is tried, since TLS 1.2's ECDSA schemes do
    /// not fix the curve. (TLS 1.3 has rustls's own `verify_tls13_signature_with_raw_key`.)
    fn verify_tls12_raw(
        &self,
        message: &[u8],
        spki: &SubjectPublicKeyInfoDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let unadvertised = || {
            rustls::Error::PeerMisbehaved(PeerMisbehaved::SignedHandshakeWithUnadvertisedSigScheme)
        };
        let candidates = self
            .algs
            .mapping
            .iter()
            .find(|(scheme, _)| *scheme == dss.scheme)
            .map(|(_, algs)| *algs)
            .ok_or_else(unadvertised)?;
        let key = webpki::RawPublicKeyEntity::try_from(spki).map_err(|_| bad_encoding())?;
        let mut mismatch = None;
        for alg in candidates {
            match key.verify_signature(*alg, message, dss.signature()) {
                Ok(()) => return Ok(HandshakeSignatureValid::assertion()),
                // The key is of another type or curve than this candidate: try the next one.
                Err(e @ webpki::Error::UnsupportedSignatureAlgorithmForPublicKeyContext(_)) => {
                    mismatch = Some(e);
                }
                Err(e) => return Err(signature_error(e)),
            }
        }
        // No candidate fits the key: nothing was verified, so the handshake fails.
        Err(mismatch.map_or_else(unadvertised, signature_error))
    }
}

impl ClientCertVerifier for AnyClientCert {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        // Well-formedness only; the registry decides after the handshake (see the module docs).
        client_key(end_entity)?;
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        match client_key(cert)? {
            ClientKey::WebPki => {
                rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algs)
            }
            ClientKey::Legacy(spki) => self.verify_tls12_raw(message, &spki, dss),
        }
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        match client_key(cert)? {
            ClientKey::WebPki => {
                rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algs)
            }
            ClientKey::Legacy(spki) => {
                rustls::crypto::verify_tls13_signature_with_raw_key(message, &spki, dss, &self.algs)
            }
        }
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        // Both paths verify with `self.algs`, so everything it maps is verifiable for v1 and v3 alike.
        self.algs.supported_schemes()
    }
}

/// Serves the default certificate, or for an SNI naming an account endpoint a certificate for exactly that
/// name, issued from the root CA on first use and cached, so `describe-endpoint`'s host name verifies.
struct CertResolver {
    default: Arc<CertifiedKey>,
    minted: Mutex<HashMap<String, Arc<CertifiedKey>>>,
    registry: Arc<RwLock<Arc<Registry>>>,
    domain: String,
    root_ca: Arc<pki::CertificateAuthority>,
    provider: Arc<CryptoProvider>,
}

impl std::fmt::Debug for CertResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertResolver")
            .field("domain", &self.domain)
            .finish_non_exhaustive()
    }
}

impl ResolvesServerCert for CertResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let Some(sni) = hello.server_name() else {
            return Some(self.default.clone());
        };
        let sni = sni.to_ascii_lowercase();
        let is_endpoint = self
            .registry
            .read()
            .ok()
            .is_some_and(|r| r.account_for_sni(&sni, &self.domain).is_some());
        if !is_endpoint {
            return Some(self.default.clone());
        }
        let mut minted = self.minted.lock().ok()?;
        if let Some(k) = minted.get(&sni) {
            return Some(k.clone());
        }
        match certified_key(
            &self.root_ca,
            &self.provider,
            std::slice::from_ref(&sni),
            now_unix(),
        ) {
            Ok(k) => {
                tracing::info!(name = %sni, "issued a server certificate for an account endpoint");
                minted.insert(sni, k.clone());
                Some(k)
            }
            Err(e) => {
                tracing::warn!(name = %sni, error = %e, "could not issue a server certificate; serving the default");
                Some(self.default.clone())
            }
        }
    }
}

pub fn now_unix() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

fn certified_key(
    ca: &pki::CertificateAuthority,
    provider: &CryptoProvider,
    names: &[String],
    now: i64,
) -> Result<Arc<CertifiedKey>, GatewayError> {
    let (cert, key) = ca
        .issue_server_cert(names, pki::KeyAlgorithm::EcdsaP256, now)
        .map_err(|e| GatewayError::ServerCertificate(e.to_string()))?;
    let key_der = PrivateKeyDer::from_pem_slice(key.private_key_pem().as_bytes())
        .map_err(|e| GatewayError::ServerCertificate(e.to_string()))?;
    let signing = provider
        .key_provider
        .load_private_key(key_der)
        .map_err(|e| GatewayError::ServerCertificate(e.to_string()))?;
    Ok(Arc::new(CertifiedKey::new(
        vec![CertificateDer::from(cert.der().to_vec())],
        signing,
    )))
}

/// The two server configurations: one that selects ALPN `x-amzn-mqtt-ca` (for clients that offer it, on either
/// listener) and one without ALPN (for clients that offer none or other protocols: rustls would otherwise refuse
/// a ClientHello whose ALPN list has no match).
pub struct TlsConfigs {
    pub alpn: Arc<ServerConfig>,
    pub plain: Arc<ServerConfig>,
}

pub fn server_configs(
    root_ca: Arc<pki::CertificateAuthority>,
    server_names: &[String],
    domain: &str,
    registry: Arc<RwLock<Arc<Registry>>>,
) -> Result<TlsConfigs, GatewayError> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let names = if server_names.is_empty() {
        vec!["localhost".to_owned(), "127.0.0.1".to_owned()]
    } else {
        server_names.to_vec()
    };
    let default = certified_key(&root_ca, &provider, &names, now_unix())?;
    let resolver = Arc::new(CertResolver {
        default,
        minted: Mutex::new(HashMap::new()),
        registry,
        domain: domain.trim_matches('.').to_ascii_lowercase(),
        root_ca,
        provider: provider.clone(),
    });
    let verifier = Arc::new(AnyClientCert {
        algs: provider.signature_verification_algorithms,
    });
    let build = |alpn: bool| -> Result<Arc<ServerConfig>, GatewayError> {
        let mut cfg = ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(|e| GatewayError::Tls(e.to_string()))?
            .with_client_cert_verifier(verifier.clone())
            .with_cert_resolver(resolver.clone());
        if alpn {
            cfg.alpn_protocols = vec![ALPN_MQTT_CA.to_vec()];
        }
        // AWS IoT does not support session tickets; not issuing them also saves work per handshake.
        cfg.send_tls13_tickets = 0;
        Ok(Arc::new(cfg))
    };
    Ok(TlsConfigs {
        alpn: build(true)?,
        plain: build(false)?,
    })
}
