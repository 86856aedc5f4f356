//! The MSK IAM broker's TLS listener, as MSK's port 9098 is: a server
//! certificate that chains to a CA in the machine's system trust store,
//! so that a client given no CA option must find that store on its own.
//! That is what the client machine's `pipeline` (OpenSSL compiled in, its
//! built-in certificate directory a build path) has to do against MSK,
//! whose certificates chain to Amazon's public CAs in Amazon Linux's
//! bundle.
//!
//! The CA is made here and added to Debian's store
//! (`/usr/local/share/ca-certificates/`, `update-ca-certificates`); its
//! private key is deleted as soon as the broker's certificate is signed,
//! so the trust this adds covers that one certificate and nothing that
//! could be signed later.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::{install, paths};

/// Where Debian takes local CAs from, and the bundle `update-ca-certificates`
/// writes (one of the paths librdkafka probes).
const LOCAL_CA_DIR: &str = "/usr/local/share/ca-certificates";
const SYSTEM_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";
const CA_FILE_NAME: &str = "pipeline-local-msk-test-ca.crt";

/// The broker's key and certificate chain in one PEM file (Kafka's PEM
/// keystore), made and trusted on first use.
pub fn broker_keystore() -> Result<PathBuf> {
    let dir = paths::local_dir().join("kafka-msk-iam/tls");
    let keystore = dir.join("broker-keystore.pem");
    let ca = dir.join("ca.pem");
    if !(keystore.exists() && ca.exists()) {
        make_certificates(&dir, &keystore, &ca)?;
    }
    trust(&ca)?;
    Ok(keystore)
}

fn make_certificates(dir: &Path, keystore: &Path, ca: &Path) -> Result<()> {
    if dir.exists() {
        std::fs::remove_dir_all(dir)?;
    }
    std::fs::create_dir_all(dir)?;
    let log = paths::log_dir().join("kafka-msk-iam-tls.log");
    let openssl = |args: &[&str]| -> Result<()> {
        install::run_logged(Command::new("openssl").args(args).current_dir(dir), &log)
            .with_context(|| format!("openssl {} (Debian package openssl)", args.first().unwrap_or(&"")))
    };
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "3650",
        "-subj",
        "/CN=pipeline local MSK test CA (key deleted after use)",
        "-addext",
        "basicConstraints=critical,CA:TRUE,pathlen:0",
        "-addext",
        "keyUsage=critical,keyCertSign",
    ])?;
    // Kafka's PEM keystore takes an unencrypted PKCS#8 key, which
    // `req -nodes` writes.
    openssl(&["req", "-newkey", "rsa:2048", "-nodes", "-keyout", "broker.key", "-out", "broker.csr", "-subj", "/CN=localhost"])?;
    std::fs::write(
        dir.join("broker.ext"),
        "basicConstraints=critical,CA:FALSE\n\
         keyUsage=critical,digitalSignature,keyEncipherment\n\
         extendedKeyUsage=serverAuth\n\
         subjectAltName=DNS:localhost,IP:127.0.0.1\n",
    )?;
    openssl(&[
        "x509",
        "-req",
        "-in",
        "broker.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-set_serial",
        "1",
        "-days",
        "3650",
        "-extfile",
        "broker.ext",
        "-out",
        "broker.pem",
    ])?;
    std::fs::remove_file(dir.join("ca.key")).context("deleting the test CA's private key")?;
    let pem = [dir.join("broker.key"), dir.join("broker.pem"), ca.to_path_buf()]
        .iter()
        .map(std::fs::read_to_string)
        .collect::<std::io::Result<Vec<_>>>()?
        .concat();
    std::fs::write(keystore, pem)?;
    Ok(())
}

/// Adds the CA to the system store unless the bundle already has it.
fn trust(ca: &Path) -> Result<()> {
    let cert = std::fs::read_to_string(ca)?;
    let body = cert.trim();
    if std::fs::read_to_string(SYSTEM_BUNDLE).is_ok_and(|bundle| bundle.contains(body)) {
        return Ok(());
    }
    let target = Path::new(LOCAL_CA_DIR).join(CA_FILE_NAME);
    let how = format!(
        "the MSK IAM broker's TLS listener needs its test CA in the system trust store: \
         sudo apt-get install -y ca-certificates && sudo cp {} {} && sudo update-ca-certificates",
        ca.display(),
        target.display()
    );
    std::fs::create_dir_all(LOCAL_CA_DIR).and_then(|()| std::fs::write(&target, &cert)).with_context(|| how.clone())?;
    // In /usr/sbin, which a non-root PATH may lack.
    let tool = ["/usr/sbin/update-ca-certificates", "update-ca-certificates"]
        .into_iter()
        .find(|t| Path::new(t).exists())
        .unwrap_or("update-ca-certificates");
    install::run_logged(&mut Command::new(tool), &paths::log_dir().join("kafka-msk-iam-tls.log")).context(how.clone())?;
    if !std::fs::read_to_string(SYSTEM_BUNDLE).is_ok_and(|bundle| bundle.contains(body)) {
        bail!("{SYSTEM_BUNDLE} still lacks the test CA after update-ca-certificates; {how}");
    }
    Ok(())
}
