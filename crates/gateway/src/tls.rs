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
use rustls::{DigitallySignedStruct, DistinguishedName, ServerConfig, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, UnixTime};

use crate::GatewayError;
use crate::registry::Registry;

/// The ALPN protocol AWS IoT uses for MQTT with client certificates on port 443.
pub const ALPN_MQTT_CA: &[u8] = b"x-amzn-mqtt-ca";

/// Accepts any well-formed client certificate; verifies the handshake signature with the provider's algorithms.
#[derive(Debug)]
struct AnyClientCert {
    algs: WebPkiSupportedAlgorithms,
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
        webpki::EndEntityCert::try_from(end_entity).map_err(|_| {
            rustls::Error::InvalidCertificate(rustls::CertificateError::BadEncoding)
        })?;
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algs)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algs)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
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
