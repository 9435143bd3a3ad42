//! Test fixtures made with the `openssl` CLI, the way real users make their CAs.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// 2025-01-01T00:00:00Z.
pub const NOW: i64 = 1_735_689_600;

pub struct Dir(pub tempfile::TempDir);

impl Dir {
    pub fn new() -> Self {
        Dir(tempfile::tempdir().expect("tempdir"))
    }
    pub fn path(&self, name: &str) -> PathBuf {
        self.0.path().join(name)
    }
    pub fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.path(name)).expect("read fixture")
    }
    /// Runs openssl in this directory and panics with its stderr on failure.
    pub fn openssl(&self, args: &[&str]) {
        let out = Command::new("/usr/bin/openssl")
            .args(args)
            .current_dir(self.0.path())
            .output()
            .expect("run openssl");
        assert!(
            out.status.success(),
            "openssl {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    /// Runs openssl and returns stdout.
    pub fn openssl_out(&self, args: &[&str]) -> String {
        let out = Command::new("/usr/bin/openssl")
            .args(args)
            .current_dir(self.0.path())
            .output()
            .expect("run openssl");
        assert!(
            out.status.success(),
            "openssl {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, text).expect("write fixture");
        p
    }
}

/// `-newkey` arguments for a key spec: "rsa:2048", "rsa:4096", "P-256", "P-384", "P-521", "ed25519".
pub fn newkey_args(spec: &str) -> Vec<String> {
    match spec {
        s if s.starts_with("rsa:") => vec!["-newkey".into(), s.into()],
        "ed25519" => vec!["-newkey".into(), "ed25519".into()],
        curve => vec![
            "-newkey".into(),
            "ec".into(),
            "-pkeyopt".into(),
            format!("ec_paramgen_curve:{curve}"),
        ],
    }
}

/// A self-signed CA `<name>.pem` / `<name>.key`, made with `openssl req -x509`.
pub fn openssl_root(dir: &Dir, name: &str, key: &str, subj: &str) {
    let mut args: Vec<String> = vec!["req".into(), "-x509".into(), "-nodes".into()];
    args.extend(newkey_args(key));
    args.extend(
        [
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.pem"),
            "-subj",
            subj,
            "-days",
            "3650",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ]
        .map(String::from),
    );
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    dir.openssl(&refs);
}

/// A CSR `<name>.csr` with key `<name>.key`.
pub fn openssl_csr(dir: &Dir, name: &str, key: &str, subj: &str, extra: &[&str]) {
    let mut args: Vec<String> = vec!["req".into(), "-new".into(), "-nodes".into()];
    args.extend(newkey_args(key));
    args.extend(
        [
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.csr"),
            "-subj",
            subj,
        ]
        .map(String::from),
    );
    args.extend(extra.iter().map(|s| s.to_string()));
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    dir.openssl(&refs);
}

/// Signs `<name>.csr` with CA `<ca>` into `<name>.pem` (`openssl x509 -req`), with an
/// extensions file section if given (e.g. to make an intermediate CA).
pub fn openssl_sign(dir: &Dir, name: &str, ca: &str, days: &str, ext: Option<&str>) {
    let mut args: Vec<String> = [
        "x509",
        "-req",
        "-in",
        &format!("{name}.csr"),
        "-CA",
        &format!("{ca}.pem"),
        "-CAkey",
        &format!("{ca}.key"),
        "-CAcreateserial",
        "-out",
        &format!("{name}.pem"),
        "-days",
        days,
        "-sha256",
    ]
    .map(String::from)
    .to_vec();
    if let Some(ext) = ext {
        let file = format!("{name}.ext");
        dir.write(&file, &format!("[v3]\n{ext}\n"));
        args.extend(["-extfile", &file, "-extensions", "v3"].map(String::from));
    }
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    dir.openssl(&refs);
}

/// An AWS-style verification certificate for RegisterCACertificate: CN = `code`, signed by `ca`.
pub fn openssl_verification_cert(dir: &Dir, ca: &str, code: &str) -> String {
    openssl_csr(dir, "verification", "rsa:2048", &format!("/CN={code}"), &[]);
    openssl_sign(dir, "verification", ca, "500", None);
    dir.read("verification.pem")
}

pub fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}
