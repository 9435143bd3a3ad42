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
use store::{CertificateMode, CertificateStatus, NewAccount, NewCertificate, Scope, Store, Target};
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
                alpn_listen: None,
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
        self.gateway = Some(gw);
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
        self.store
            .insert_certificate(
                &scope(account),
                &NewCertificate {
                    cert_id: d.id().to_owned(),
                    pem: d.cert.pem().to_owned(),
                    ca_cert_id: None,
                    status,
                    mode: CertificateMode::Default,
                    not_before: d.cert.not_before(),
                    not_after: d.cert.not_after(),
                },
            )
            .await
            .unwrap();
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
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_client_auth_cert(
            vec![CertificateDer::from(d.cert.der().to_vec())],
            PrivateKeyDer::from_pem_slice(d.key_pem.as_bytes()).unwrap(),
        )
        .unwrap();
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
