//! The data directory: created on first start, reused afterwards.
//!
//! ```text
//! DIR/onboard.db                       the registry (SQLite)
//! DIR/ca/root-ca.pem, root-ca.key      trust anchor devices and clients embed; signs server certificates
//! DIR/ca/server.pem, server.key        server certificate for the API (HTTPS) and the default MQTT name
//! DIR/ca/device-ca.pem, device-ca.key  signs the device certificates Onboard issues
//! DIR/credentials, DIR/aws-config      the default account's keys, in the AWS CLI's own formats
//! ```

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use pki::{CertificateAuthority, KeyAlgorithm};
use rand::Rng;
use store::{NewAccount, Store};

use crate::config::Config;

/// Reissue the server certificate this long before it expires.
const SERVER_CERT_RENEW_SECS: i64 = 30 * 86_400;
pub const DEFAULT_ACCOUNT: &str = "default";

pub struct Paths {
    pub root: PathBuf,
}

impl Paths {
    pub fn new(root: &Path) -> Self {
        Paths {
            root: root.to_owned(),
        }
    }
    pub fn db(&self) -> PathBuf {
        self.root.join("onboard.db")
    }
    pub fn ca(&self, file: &str) -> PathBuf {
        self.root.join("ca").join(file)
    }
    pub fn credentials(&self) -> PathBuf {
        self.root.join("credentials")
    }
    pub fn aws_config(&self) -> PathBuf {
        self.root.join("aws-config")
    }
}

/// Everything `serve` needs from the data directory.
pub struct Materials {
    pub store: Store,
    pub root_ca: Arc<CertificateAuthority>,
    pub device_ca: Arc<CertificateAuthority>,
    pub server_cert_pem: String,
    pub server_key_pem: String,
    /// The default account, when this start created it (for the banner).
    pub created_account: Option<Credentials>,
}

/// A freshly created account's identifiers and secret.
pub struct Credentials {
    pub account_id: String,
    pub access_key_id: String,
    pub secret_access_key: String,
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// Creates a directory that only its owner may enter.
fn private_dir(path: &Path) -> anyhow::Result<()> {
    fs::create_dir_all(path).with_context(|| format!("cannot create {}", path.display()))?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o700))
        .with_context(|| format!("cannot set the permissions of {}", path.display()))
}

/// Writes a file that holds a secret: created 0600 under a temporary name, then renamed into place.
pub fn write_private(path: &Path, contents: &str) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp");
    let _ = fs::remove_file(&tmp);
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("cannot create {}", tmp.display()))?;
    f.write_all(contents.as_bytes())?;
    f.sync_all()?;
    fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))
}

/// Opens (creating where missing) the registry database. Used by every subcommand.
pub async fn open_store(config: &Config) -> anyhow::Result<Store> {
    private_dir(&config.data_dir)?;
    let paths = Paths::new(&config.data_dir);
    // The database holds secret access keys: create it 0600 (SQLite gives its -wal and -shm files the same mode).
    if !paths.db().exists() {
        OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(paths.db())
            .with_context(|| format!("cannot create {}", paths.db().display()))?;
    }
    Store::open(&paths.db())
        .await
        .with_context(|| format!("cannot open the registry at {}", paths.db().display()))
}

fn load_or_create_ca(
    paths: &Paths,
    name: &str,
    common_name: &str,
) -> anyhow::Result<CertificateAuthority> {
    let (cert, key) = (
        paths.ca(&format!("{name}.pem")),
        paths.ca(&format!("{name}.key")),
    );
    if cert.exists() && key.exists() {
        return CertificateAuthority::load(&cert, &key)
            .with_context(|| format!("cannot load {}", cert.display()));
    }
    let ca = CertificateAuthority::generate_root(common_name, KeyAlgorithm::EcdsaP256, now())?;
    ca.save(&cert, &key)
        .with_context(|| format!("cannot write {}", cert.display()))?;
    tracing::info!(path = %cert.display(), "created {common_name}");
    Ok(ca)
}

/// The names the server certificate must carry.
pub fn server_names(config: &Config) -> Vec<String> {
    let mut names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
    for n in &config.server_names {
        if !names.contains(n) {
            names.push(n.clone());
        }
    }
    names
}

/// Loads the server certificate, issuing it when missing, near expiry, or lacking a configured name.
fn load_or_issue_server_cert(
    paths: &Paths,
    config: &Config,
    root: &CertificateAuthority,
) -> anyhow::Result<(String, String)> {
    let (cert_path, key_path) = (paths.ca("server.pem"), paths.ca("server.key"));
    let names = server_names(config);
    if let (Ok(cert_pem), Ok(key_pem)) = (
        fs::read_to_string(&cert_path),
        fs::read_to_string(&key_path),
    ) {
        let cert =
            pki::Certificate::from_pem(&cert_pem).context("the server certificate is not valid")?;
        let sans = cert.subject_alt_names();
        let has = |n: &String| match n.parse::<std::net::IpAddr>() {
            Ok(ip) => sans.ip_addresses.contains(&ip),
            Err(_) => sans.dns_names.iter().any(|d| d == n),
        };
        if cert.not_after() - SERVER_CERT_RENEW_SECS > now() && names.iter().all(has) {
            return Ok((cert_pem, key_pem));
        }
        tracing::info!("reissuing the server certificate (names changed or expiry near)");
    }
    let (cert, key) = root.issue_server_cert(&names, KeyAlgorithm::EcdsaP256, now())?;
    write_private(&key_path, key.private_key_pem())?;
    fs::write(&cert_path, cert.pem())
        .with_context(|| format!("cannot write {}", cert_path.display()))?;
    Ok((cert.pem().to_owned(), key.private_key_pem().to_owned()))
}

/// Random identifiers in AWS's shapes.
pub fn generate_account(name: &str) -> NewAccount {
    let mut rng = rand::rng();
    let mut pick = |alphabet: &[u8], n: usize| -> String {
        (0..n)
            .map(|_| alphabet[rng.random_range(0..alphabet.len())] as char)
            .collect()
    };
    const DIGITS: &[u8] = b"0123456789";
    const LOWER: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    const KEY: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    const SECRET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    NewAccount {
        account_id: format!("{}{}", pick(b"123456789", 1), pick(DIGITS, 11)),
        name: name.to_owned(),
        endpoint_prefix: format!("a{}", pick(LOWER, 13)),
        access_key_id: format!("AKIA{}", pick(KEY, 16)),
        secret_access_key: pick(SECRET, 40),
    }
}

fn write_client_files(
    paths: &Paths,
    config: &Config,
    creds: Option<&Credentials>,
) -> anyhow::Result<()> {
    if let Some(c) = creds {
        write_private(
            &paths.credentials(),
            &format!(
                "[default]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
                c.access_key_id, c.secret_access_key
            ),
        )?;
    }
    // Regenerated each start so it follows the listen address; it holds no secret.
    let aws_config = format!(
        "[default]\nregion = {}\nendpoint_url = {}\n",
        config.region,
        config.api_url()
    );
    if fs::read_to_string(paths.aws_config()).ok().as_deref() != Some(aws_config.as_str()) {
        fs::write(paths.aws_config(), aws_config)?;
    }
    Ok(())
}

/// Initialises what is missing in the data directory and loads the rest.
pub async fn prepare(config: &Config) -> anyhow::Result<Materials> {
    let paths = Paths::new(&config.data_dir);
    let store = open_store(config).await?;
    private_dir(&config.data_dir.join("ca"))?;
    let root_ca = load_or_create_ca(&paths, "root-ca", "Onboard Root CA")?;
    let device_ca = load_or_create_ca(&paths, "device-ca", "Onboard Device CA")?;
    let (server_cert_pem, server_key_pem) = load_or_issue_server_cert(&paths, config, &root_ca)?;

    let has_default = store
        .list_accounts()
        .await?
        .iter()
        .any(|a| a.name == DEFAULT_ACCOUNT);
    let created_account = if has_default {
        None
    } else {
        let new = generate_account(DEFAULT_ACCOUNT);
        store.create_account(&new).await?;
        Some(Credentials {
            account_id: new.account_id,
            access_key_id: new.access_key_id,
            secret_access_key: new.secret_access_key,
        })
    };
    write_client_files(&paths, config, created_account.as_ref())?;
    Ok(Materials {
        store,
        root_ca: Arc::new(root_ca),
        device_ca: Arc::new(device_ca),
        server_cert_pem,
        server_key_pem,
        created_account,
    })
}
