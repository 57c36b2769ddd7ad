//! Publisher signatures: an ed25519 signature over a bundle's SHA-256 digest (the 32 raw
//! bytes), checked against the keys the daemon's config trusts, under its policy.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use ed25519_dalek::{Signature as Ed25519, Verifier, VerifyingKey};

use aether_proto::api::apps::Signature;
use aether_proto::{ErrorBody, ErrorCode};

use crate::config::SignaturePolicy;

pub struct Trust {
    policy: SignaturePolicy,
    keys: BTreeMap<String, VerifyingKey>,
}

fn refuse(msg: impl Into<String>) -> ErrorBody {
    ErrorBody::new(ErrorCode::Forbidden, msg)
}

/// A 32-byte key or 64-byte signature from base64.
fn decode<const N: usize>(text: &str) -> Option<[u8; N]> {
    BASE64.decode(text.trim()).ok()?.try_into().ok()
}

impl Trust {
    pub fn new(
        policy: SignaturePolicy,
        publishers: &BTreeMap<String, String>,
    ) -> anyhow::Result<Trust> {
        let mut keys = BTreeMap::new();
        for (name, key) in publishers {
            let key = decode::<32>(key)
                .and_then(|bytes| VerifyingKey::from_bytes(&bytes).ok())
                .ok_or_else(|| {
                    anyhow::anyhow!(
                        "apps.publishers.{name}: not an ed25519 public key (32 bytes, base64)"
                    )
                })?;
            keys.insert(name.clone(), key);
        }
        Ok(Trust { policy, keys })
    }

    /// Who vouches for the bundle with this digest, and what to warn about; or why it may not
    /// be installed here.
    pub fn judge(
        &self,
        sha256_hex: &str,
        publisher: Option<&str>,
        signature: Option<&str>,
    ) -> Result<(Signature, Vec<String>), ErrorBody> {
        let off = self.policy == SignaturePolicy::Off;
        let Some(signature) = signature else {
            return match self.policy {
                SignaturePolicy::Require => Err(refuse(
                    "the bundle is not signed, and this daemon installs only bundles signed by \
                     a trusted publisher (apps.signatures = \"require\")",
                )),
                SignaturePolicy::Warn => Ok((
                    Signature::Unsigned,
                    vec!["not signed: no publisher vouches for this bundle".into()],
                )),
                SignaturePolicy::Off => Ok((Signature::Unsigned, vec![])),
            };
        };
        let Some(publisher) = publisher.filter(|p| !p.is_empty()) else {
            return Err(refuse("the bundle's signature names no publisher"));
        };
        let Some(key) = self.keys.get(publisher) else {
            return match self.policy {
                SignaturePolicy::Require => Err(refuse(format!(
                    "the bundle is signed by {publisher:?}, a publisher this daemon does not \
                     trust (add its key under [apps.publishers])"
                ))),
                SignaturePolicy::Warn => Ok((
                    Signature::UnknownPublisher {
                        publisher: publisher.to_owned(),
                    },
                    vec![format!(
                        "signed by {publisher:?}, whose key this daemon does not have"
                    )],
                )),
                SignaturePolicy::Off => Ok((
                    Signature::UnknownPublisher {
                        publisher: publisher.to_owned(),
                    },
                    vec![],
                )),
            };
        };
        let digest = digest_bytes(sha256_hex);
        let verified = match (decode::<64>(signature), digest) {
            (Some(sig), Some(digest)) => key.verify(&digest, &Ed25519::from_bytes(&sig)).is_ok(),
            _ => false,
        };
        match (verified, off) {
            (true, _) => Ok((
                Signature::Verified {
                    publisher: publisher.to_owned(),
                },
                vec![],
            )),
            (false, true) => Ok((Signature::Unsigned, vec![])),
            (false, false) => Err(refuse(format!(
                "the bundle's signature does not match {publisher:?}'s key: it was altered, \
                 or not signed by them"
            ))),
        }
    }
}

fn digest_bytes(hex: &str) -> Option<[u8; 32]> {
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(i * 2..i * 2 + 2)?, 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::{Signer, SigningKey};

    #[test]
    fn policies() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let other = SigningKey::from_bytes(&[8; 32]);
        let publishers = BTreeMap::from([(
            "acme".to_owned(),
            BASE64.encode(key.verifying_key().as_bytes()),
        )]);
        let hex = "ab".repeat(32);
        let digest = digest_bytes(&hex).unwrap();
        let good = BASE64.encode(key.sign(&digest).to_bytes());
        let forged = BASE64.encode(other.sign(&digest).to_bytes());

        let require = Trust::new(SignaturePolicy::Require, &publishers).unwrap();
        assert_eq!(
            require.judge(&hex, Some("acme"), Some(&good)).unwrap().0,
            Signature::Verified {
                publisher: "acme".into()
            }
        );
        let e = require
            .judge(&hex, Some("acme"), Some(&forged))
            .unwrap_err();
        assert!(e.msg.contains("does not match"), "{}", e.msg);
        assert!(
            require
                .judge(&hex, None, None)
                .unwrap_err()
                .msg
                .contains("not signed")
        );
        assert!(require.judge(&hex, Some("evil"), Some(&good)).is_err());
        assert!(require.judge(&hex, Some("acme"), Some("garbage")).is_err());

        let warn = Trust::new(SignaturePolicy::Warn, &publishers).unwrap();
        let (state, warnings) = warn.judge(&hex, None, None).unwrap();
        assert_eq!((state, warnings.len()), (Signature::Unsigned, 1));
        assert!(warn.judge(&hex, Some("acme"), Some(&forged)).is_err());

        let off = Trust::new(SignaturePolicy::Off, &publishers).unwrap();
        assert!(off.judge(&hex, Some("acme"), Some(&forged)).is_ok());
        assert!(
            Trust::new(
                SignaturePolicy::Warn,
                &BTreeMap::from([("x".into(), "AAA".into())])
            )
            .is_err()
        );
    }
}
