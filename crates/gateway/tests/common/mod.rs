//! Test fixture: a temp data dir with a store, a root CA, accounts, device certificates, a running gateway, and
//! a small MQTT client over tokio-rustls built on mqtt-proto's codec.
#![allow(dead_code, clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use gateway::{Gateway, GatewayConfig};
use mqtt_proto::packet::{
    ConnAck, Connect, Disconnect, Properties, PubResp, Publish, SubAck, Subscribe,
    SubscriptionOptions, Unsubscribe, Will,
};
use mqtt_proto::{Decoder, Packet, ProtocolVersion, QoS, ReasonCode};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use store::{
    CaRegistration, CertificateMode, CertificateStatus, NewAccount, NewCertificate, Scope, Store,
    Target,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// Upper bound for waiting on something that should happen; a guard against hangs, not a synchronisation.
pub const WAIT: Duration = Duration::from_secs(10);
pub const REGION: &str = "us-east-1";
pub const DOMAIN: &str = "onboard.test";

pub fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub store: Store,
    pub root: Arc<pki::CertificateAuthority>,
    pub device_ca: pki::CertificateAuthority,
    pub gateway: Option<Gateway>,
    pub addr: SocketAddr,
    /// The ALPN (AWS's 443) listener.
    pub alpn_addr: SocketAddr,
    /// The prometheus registry the running gateway registered its metrics in.
    pub metrics: prometheus_client::registry::Registry,
}

pub struct Device {
    pub cert: pki::Certificate,
    pub key_pem: String,
}

impl Device {
    pub fn id(&self) -> &str {
        self.cert.id()
    }
}

pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "gateway=debug".into()),
        )
        .with_test_writer()
        .try_init();
}

pub fn scope(account: &str) -> Scope {
    Scope::new(account, REGION)
}

impl Fixture {
    pub async fn new() -> Fixture {
        init_tracing();
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("registry.db")).await.unwrap();
        let root = Arc::new(
            pki::CertificateAuthority::generate_root(
                "Onboard Test Root",
                pki::KeyAlgorithm::EcdsaP256,
                now(),
            )
            .unwrap(),
        );
        let device_ca = pki::CertificateAuthority::generate_root(
            "Onboard Test Device CA",
            pki::KeyAlgorithm::EcdsaP256,
            now(),
        )
        .unwrap();
        let mut f = Fixture {
            dir,
            store,
            root,
            device_ca,
            gateway: None,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            alpn_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            metrics: prometheus_client::registry::Registry::default(),
        };
        f.account("111122223333", "acct-a").await;
        f.start().await;
        f
    }

    pub async fn start(&mut self) {
        let mut registry = prometheus_client::registry::Registry::default();
        let gw = Gateway::start(
            GatewayConfig {
                mqtt_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
                alpn_listen: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
                domain: DOMAIN.into(),
                server_names: vec!["localhost".into(), "127.0.0.1".into()],
            },
            self.store.clone(),
            self.root.clone(),
            &mut registry,
        )
        .await
        .unwrap();
        self.addr = gw.local_addrs()[0];
        self.alpn_addr = gw.local_addrs()[1];
        self.gateway = Some(gw);
        self.metrics = registry;
    }

    pub async fn restart(&mut self) {
        if let Some(gw) = self.gateway.take() {
            gw.shutdown().await;
        }
        self.start().await;
    }

    pub async fn account(&self, id: &str, prefix: &str) {
        self.store
            .create_account(&NewAccount {
                account_id: id.into(),
                name: format!("name-{id}"),
                endpoint_prefix: prefix.into(),
                access_key_id: format!("AKIA{id}"),
                secret_access_key: "secret".into(),
            })
            .await
            .unwrap();
    }

    /// A device certificate registered ACTIVE in `account`.
    pub async fn device(&self, account: &str) -> Device {
        self.device_with(account, CertificateStatus::Active).await
    }

    pub async fn device_with(&self, account: &str, status: CertificateStatus) -> Device {
        let d = self.unregistered_device();
        self.register(account, &d, status).await;
        d
    }

    pub fn unregistered_device(&self) -> Device {
        let (cert, key) = self
            .device_ca
            .issue_device_cert_with_new_key(pki::KeyAlgorithm::EcdsaP256, now())
            .unwrap();
        Device {
            cert,
            key_pem: key.private_key_pem().to_owned(),
        }
    }

    pub async fn register(&self, account: &str, d: &Device, status: CertificateStatus) {
        self.register_with(account, d, status, CertificateMode::Default, None)
            .await;
    }

    pub async fn register_with(
        &self,
        account: &str,
        d: &Device,
        status: CertificateStatus,
        mode: CertificateMode,
        ca_cert_id: Option<&str>,
    ) {
        self.store
            .insert_certificate(
                &scope(account),
                &NewCertificate {
                    cert_id: d.id().to_owned(),
                    pem: d.cert.pem().to_owned(),
                    ca_cert_id: ca_cert_id.map(str::to_owned),
                    status,
                    mode,
                    not_before: d.cert.not_before(),
                    not_after: d.cert.not_after(),
                },
            )
            .await
            .unwrap();
    }

    /// Registers `ca` ACTIVE in DEFAULT mode (as RegisterCACertificate would after its checks).
    pub async fn register_ca(&self, account: &str, ca: &pki::Certificate) {
        self.store
            .register_ca_certificate(
                &scope(account),
                &CaRegistration {
                    cert_id: ca.id().to_owned(),
                    pem: ca.pem().to_owned(),
                    subject_hex: hex::encode(ca.subject_der()),
                    mode: CertificateMode::Default,
                    active: true,
                    auto_registration: false,
                    registration_config: None,
                    not_before: ca.not_before(),
                    not_after: ca.not_after(),
                },
            )
            .await
            .unwrap();
    }

    /// The metrics in the Prometheus text format.
    pub fn metrics_text(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.metrics).unwrap();
        out
    }

    /// Creates policy `name` with `statements` (a JSON array) and attaches it to the device.
    pub async fn policy(&self, account: &str, name: &str, statements: &str, d: &Device) {
        let doc = format!(r#"{{"Version": "2012-10-17", "Statement": {statements}}}"#);
        policy::PolicyDocument::parse(&doc).unwrap();
        self.store
            .create_policy(&scope(account), name, &doc)
            .await
            .unwrap();
        self.attach(account, name, d).await;
    }

    pub async fn attach(&self, account: &str, name: &str, d: &Device) {
        self.store
            .attach_policy(
                &scope(account),
                name,
                &Target::Certificate(d.id().to_owned()),
            )
            .await
            .unwrap();
    }

    /// A policy allowing everything on the data plane.
    pub async fn allow_all(&self, account: &str, d: &Device) {
        let name = format!("all-{}", &d.id()[..8]);
        self.policy(
            account,
            &name,
            r#"[{"Effect": "Allow", "Action": "iot:*", "Resource": "*"}]"#,
            d,
        )
        .await;
    }

    pub async fn connect_tls(&self, d: &Device, sni: &str) -> TlsStream<TcpStream> {
        connect_tls(self.addr, &self.root, d, sni, &[])
            .await
            .unwrap()
    }

    pub async fn client(&self, d: &Device, version: ProtocolVersion) -> Client {
        Client::new(self.connect_tls(d, "localhost").await, version)
    }

    /// Connects and asserts a successful CONNACK.
    pub async fn connected(&self, d: &Device, version: ProtocolVersion, client_id: &str) -> Client {
        let mut c = self.client(d, version).await;
        let ack = c.connect(client_id, true).await;
        assert_eq!(
            ack.reason,
            ReasonCode::Success,
            "CONNACK for {client_id}: {ack:?}"
        );
        c
    }
}

pub async fn connect_tls(
    addr: SocketAddr,
    root: &pki::CertificateAuthority,
    d: &Device,
    sni: &str,
    alpn: &[&[u8]],
) -> std::io::Result<TlsStream<TcpStream>> {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from(root.certificate().der().to_vec()))
        .unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_client_cert_resolver(client_cert(&provider, d.cert.der(), &d.key_pem));
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let tcp = TcpStream::connect(addr).await?;
    let name = ServerName::try_from(sni.to_owned()).unwrap();
    TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
}

pub struct Client {
    pub stream: TlsStream<TcpStream>,
    pub version: ProtocolVersion,
    decoder: Decoder,
    next_id: u16,
}

impl Client {
    pub fn new(stream: TlsStream<TcpStream>, version: ProtocolVersion) -> Client {
        Client {
            stream,
            version,
            decoder: Decoder::new(Some(version), 1 << 20),
            next_id: 1,
        }
    }

    pub async fn send(&mut self, p: Packet) {
        let mut buf = BytesMut::new();
        p.encode(self.version, &mut buf).unwrap();
        self.stream.write_all(&buf).await.unwrap();
        self.stream.flush().await.unwrap();
    }

    /// The next packet, or `None` when the server closed the connection.
    pub async fn recv(&mut self) -> Option<Packet> {
        tokio::time::timeout(WAIT, self.recv_inner())
            .await
            .expect("timed out waiting for a packet")
    }

    async fn recv_inner(&mut self) -> Option<Packet> {
        let mut buf = [0u8; 4096];
        loop {
            if let Some(p) = self.decoder.decode().unwrap() {
                return Some(p);
            }
            match self.stream.read(&mut buf).await {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.decoder.feed(&buf[..n]),
            }
        }
    }

    /// The next PUBLISH (acknowledging QoS 1), skipping nothing else: any other packet fails the test.
    pub async fn expect_publish(&mut self) -> Publish {
        match self.recv().await {
            Some(Packet::Publish(p)) => {
                if let Some(id) = p.packet_id {
                    self.send(Packet::PubAck(PubResp {
                        packet_id: id,
                        reason: ReasonCode::Success,
                        properties: Properties::default(),
                    }))
                    .await;
                }
                p
            }
            other => panic!("expected PUBLISH, got {other:?}"),
        }
    }

    /// Waits until the server closes the connection, returning the MQTT 5 DISCONNECT if one came.
    pub async fn expect_closed(&mut self) -> Option<Disconnect> {
        let mut last = None;
        while let Some(p) = self.recv().await {
            match p {
                Packet::Disconnect(d) => last = Some(d),
                Packet::Publish(_) => {}
                other => panic!("expected the connection to close, got {other:?}"),
            }
        }
        last
    }

    pub async fn connect_with(
        &mut self,
        client_id: &str,
        clean: bool,
        will: Option<Will>,
    ) -> ConnAck {
        let properties = Properties {
            session_expiry_interval: (!clean && self.version == ProtocolVersion::V5)
                .then_some(3600),
            ..Properties::default()
        };
        self.send(Packet::Connect(Box::new(Connect {
            protocol: self.version,
            clean_start: clean,
            keep_alive: 60,
            client_id: client_id.into(),
            will,
            username: None,
            password: None,
            properties,
        })))
        .await;
        match self.recv().await {
            Some(Packet::ConnAck(a)) => a,
            other => panic!("expected CONNACK, got {other:?}"),
        }
    }

    pub async fn connect(&mut self, client_id: &str, clean: bool) -> ConnAck {
        self.connect_with(client_id, clean, None).await
    }

    fn id(&mut self) -> u16 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    pub async fn subscribe(&mut self, filter: &str, qos: QoS) -> SubAck {
        let packet_id = self.id();
        self.send(Packet::Subscribe(Subscribe {
            packet_id,
            properties: Properties::default(),
            filters: vec![(filter.into(), SubscriptionOptions::new(qos))],
        }))
        .await;
        loop {
            match self.recv().await {
                Some(Packet::SubAck(a)) => return a,
                Some(Packet::Publish(_)) => continue,
                other => panic!("expected SUBACK, got {other:?}"),
            }
        }
    }

    pub async fn unsubscribe(&mut self, filter: &str) {
        let packet_id = self.id();
        self.send(Packet::Unsubscribe(Unsubscribe {
            packet_id,
            properties: Properties::default(),
            filters: vec![filter.into()],
        }))
        .await;
        match self.recv().await {
            Some(Packet::UnsubAck(_)) => {}
            other => panic!("expected UNSUBACK, got {other:?}"),
        }
    }

    /// Publishes; for QoS 1 returns the PUBACK (skipping PUBLISHes that arrive meanwhile).
    pub async fn publish(
        &mut self,
        topic: &str,
        payload: &[u8],
        qos: QoS,
        retain: bool,
    ) -> Option<PubResp> {
        let packet_id = (qos != QoS::AtMostOnce).then(|| self.id());
        self.send(Packet::Publish(Publish {
            dup: false,
            qos,
            retain,
            topic: topic.into(),
            packet_id,
            properties: Properties::default(),
            payload: bytes::Bytes::copy_from_slice(payload),
        }))
        .await;
        packet_id?;
        loop {
            match self.recv().await {
                Some(Packet::PubAck(a)) => return Some(a),
                Some(Packet::Publish(_)) => continue,
                None => return None,
                other => panic!("expected PUBACK, got {other:?}"),
            }
        }
    }

    /// A round trip through the server: everything the server sent before answering is consumed, which orders
    /// the test after the server processed our earlier packets.
    pub async fn ping(&mut self) {
        self.send(Packet::PingReq).await;
        loop {
            match self.recv().await {
                Some(Packet::PingResp) => return,
                Some(_) => continue,
                None => panic!("connection closed during ping"),
            }
        }
    }

    pub async fn disconnect(mut self) {
        self.send(Packet::Disconnect(Disconnect {
            reason: ReasonCode::Success,
            properties: Properties::default(),
        }))
        .await;
        let _ = self.stream.shutdown().await;
    }
}

/// The value of one sample in Prometheus text output (`name` including its labels as printed), 0 if absent.
pub fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .map_or(0.0, |v| v.trim().parse().unwrap())
}

/// Presents `cert_der` and signs with `key_pem`, whatever they are. rustls's `with_client_auth_cert` would
/// refuse a mismatched pair, and also any X.509 v1 certificate (it checks the pair with webpki).
fn client_cert(
    provider: &rustls::crypto::CryptoProvider,
    cert_der: &[u8],
    key_pem: &str,
) -> Arc<FixedClientCert> {
    let key = provider
        .key_provider
        .load_private_key(PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).unwrap())
        .unwrap();
    let certified =
        rustls::sign::CertifiedKey::new(vec![CertificateDer::from(cert_der.to_vec())], key);
    Arc::new(FixedClientCert(Arc::new(certified)))
}

/// Presents `cert` but signs with `key`, whatever they are: rustls's own builder would refuse a mismatched pair.
#[derive(Debug)]
struct FixedClientCert(Arc<rustls::sign::CertifiedKey>);

impl rustls::client::ResolvesClientCert for FixedClientCert {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[rustls::SignatureScheme],
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        Some(self.0.clone())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// A TLS connection presenting `cert_der` and signing the handshake with `key_pem`, over exactly `version`.
pub async fn connect_tls_raw(
    addr: SocketAddr,
    root: &pki::CertificateAuthority,
    cert_der: &[u8],
    key_pem: &str,
    version: &'static rustls::SupportedProtocolVersion,
    sni: Option<&str>,
) -> std::io::Result<TlsStream<TcpStream>> {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from(root.certificate().der().to_vec()))
        .unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[version])
        .unwrap()
        .with_root_certificates(roots)
        .with_client_cert_resolver(client_cert(&provider, cert_der, key_pem));
    config.enable_sni = sni.is_some();
    let tcp = TcpStream::connect(addr).await?;
    let name = ServerName::try_from(sni.unwrap_or("localhost").to_owned()).unwrap();
    TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
}

/// True if the server accepted the TLS session: it answers an MQTT CONNECT (with anything). A TLS 1.3 client
/// finishes its side of the handshake before the server has checked the client certificate, so a refusal
/// shows up as the first read failing rather than as a connect error.
pub async fn tls_session_accepted(conn: std::io::Result<TlsStream<TcpStream>>) -> bool {
    let Ok(stream) = conn else { return false };
    let mut c = Client::new(stream, ProtocolVersion::V311);
    let mut buf = BytesMut::new();
    Packet::Connect(Box::new(Connect {
        protocol: ProtocolVersion::V311,
        clean_start: true,
        keep_alive: 60,
        client_id: "probe".into(),
        will: None,
        username: None,
        password: None,
        properties: Properties::default(),
    }))
    .encode(ProtocolVersion::V311, &mut buf)
    .unwrap();
    if c.stream.write_all(&buf).await.is_err() || c.stream.flush().await.is_err() {
        return false;
    }
    c.recv().await.is_some()
}

/// Runs a command (for the `openssl` CLI); `None` if it cannot be started (not installed).
pub fn run(dir: &std::path::Path, cmd: &str) -> Option<()> {
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .current_dir(dir)
        .output()
        .ok()?;
    assert!(
        out.status.success(),
        "{cmd}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(())
}

pub fn openssl_available() -> bool {
    std::process::Command::new("openssl")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// A CA made with the openssl CLI, as in AWS's "register your CA" walkthrough.
pub struct OpensslCa {
    pub dir: std::path::PathBuf,
    pub cert: pki::Certificate,
}

impl OpensslCa {
    /// `newkey` is an `openssl req -newkey` argument (`ec -pkeyopt ec_paramgen_curve:P-256`, `rsa:2048`, ...).
    pub fn new(dir: &std::path::Path, newkey: &str) -> OpensslCa {
        run(
            dir,
            &format!(
                "openssl req -x509 -new -newkey {newkey} -nodes -keyout ca.key -out ca.pem -days 30 \\
                 -subj /CN=OpensslTestCA"
            ),
        )
        .unwrap();
        let pem = std::fs::read_to_string(dir.join("ca.pem")).unwrap();
        OpensslCa {
            dir: dir.to_owned(),
            cert: pki::Certificate::from_pem(&pem).unwrap(),
        }
    }

    /// A device certificate as `openssl req -new | openssl x509 -req -CA` makes it without an extension file:
    /// X.509 v1 (OpenSSL 3.0).
    pub fn device(&self, name: &str, newkey: &str) -> Device {
        run(
            &self.dir,
            &format!(
                "openssl req -new -newkey {newkey} -nodes -keyout {name}.key -subj /CN={name} \
                 | openssl x509 -req -CA ca.pem -CAkey ca.key -days 30 -out {name}.pem"
            ),
        )
        .unwrap();
        let pem = std::fs::read_to_string(self.dir.join(format!("{name}.pem"))).unwrap();
        Device {
            cert: pki::Certificate::from_pem(&pem).unwrap(),
            key_pem: std::fs::read_to_string(self.dir.join(format!("{name}.key"))).unwrap(),
        }
    }
}
