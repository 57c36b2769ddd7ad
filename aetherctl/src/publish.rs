//! A publisher's keys and signatures, offline: `apps keygen` and `apps sign`. A signature is
//! ed25519 over the bundle's SHA-256 digest, as the daemon checks it.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use ed25519_dalek::{Signer, SigningKey};
use sha2::{Digest, Sha256};

use crate::Failure;

/// Write a new private key (base64 seed, mode 0600) to `path`; print the public key.
pub fn keygen(path: &Path, json: bool) -> Result<(), Failure> {
    let key = SigningKey::generate(&mut rand::rngs::OsRng);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| Failure::io(path, e))?;
    writeln!(file, "{}", BASE64.encode(key.to_bytes())).map_err(|e| Failure::io(path, e))?;
    let public = BASE64.encode(key.verifying_key().as_bytes());
    if json {
        outln!(
            "{}",
            serde_json::json!({ "key_file": path, "public_key": public })
        );
    } else {
        outln!("private key written to {} (keep it secret)", path.display());
        outln!("public key: {public}");
        outln!(
            "trust it in the daemon's config.toml:\n  [apps.publishers]\n  YOUR-NAME = \"{public}\""
        );
    }
    Ok(())
}

/// Print the signature of the bundle at `bundle` with the key in `key_file`.
pub fn sign(bundle: &Path, key_file: &Path, json: bool) -> Result<(), Failure> {
    let text = std::fs::read_to_string(key_file).map_err(|e| Failure::io(key_file, e))?;
    let seed: [u8; 32] = BASE64
        .decode(text.trim())
        .ok()
        .and_then(|bytes| bytes.try_into().ok())
        .ok_or_else(|| {
            Failure::Usage(format!(
                "{}: not a private key from `aetherctl apps keygen`",
                key_file.display()
            ))
        })?;
    let bytes = std::fs::read(bundle).map_err(|e| Failure::io(bundle, e))?;
    let digest = Sha256::digest(&bytes);
    let signature = BASE64.encode(SigningKey::from_bytes(&seed).sign(&digest).to_bytes());
    let sha256: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    if json {
        outln!(
            "{}",
            serde_json::json!({ "sha256": sha256, "signature": signature })
        );
    } else {
        outln!("{signature}");
    }
    Ok(())
}
