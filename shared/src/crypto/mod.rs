//! Token encryption: AES-256-GCM, with the key either local or a KMS data key (envelope
//! encryption). Every ciphertext is bound to the record it belongs to by an encryption
//! context (account id and provider): the context is the AES-GCM associated data and, with
//! KMS, also the KMS encryption context, so a ciphertext copied onto another account fails to
//! decrypt.

pub mod kms;
pub mod local;

use aes_gcm::aead::{Aead, Payload};
use aes_gcm::{Aes256Gcm, Key, KeyInit, Nonce};
use async_trait::async_trait;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::error::{HubError, HubResult};

/// What a ciphertext is bound to. Kept as ordered pairs so the associated data is stable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EncryptionContext(Vec<(&'static str, String)>);

impl EncryptionContext {
    /// Tokens of one account.
    pub fn account(account_id: &str, provider: &str) -> Self {
        EncryptionContext(vec![
            ("account_id", account_id.to_string()),
            ("provider", provider.to_string()),
        ])
    }

    /// The PKCE verifier of one pending login.
    pub fn login_state(state: &str, provider: &str) -> Self {
        EncryptionContext(vec![
            ("login_state", state.to_string()),
            ("provider", provider.to_string()),
        ])
    }

    pub fn pairs(&self) -> &[(&'static str, String)] {
        &self.0
    }

    /// The AES-GCM associated data: the pairs as `key=value` lines.
    fn associated_data(&self) -> Vec<u8> {
        self.0
            .iter()
            .map(|(k, v)| format!("{k}={v}\n"))
            .collect::<String>()
            .into_bytes()
    }
}

/// A sealed secret as stored: base64 fields so it reads the same in JSON and DynamoDB.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sealed {
    /// The KMS-encrypted data key (envelope encryption); absent with the local key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_key: Option<String>,
    pub nonce: String,
    pub ciphertext: String,
}

/// Encrypts and decrypts small secrets bound to a context.
#[async_trait]
pub trait TokenCipher: Send + Sync {
    async fn seal(&self, plaintext: &[u8], context: &EncryptionContext) -> HubResult<Sealed>;
    async fn open(
        &self,
        sealed: &Sealed,
        context: &EncryptionContext,
    ) -> HubResult<Zeroizing<Vec<u8>>>;
}

/// AES-256-GCM with a fresh random 96-bit nonce; the context is the associated data.
/// `data_key` is what the sealed value keeps of its key: KMS's encrypted data key, or none
/// for a local key.
fn aes_seal(
    key: &[u8; 32],
    plaintext: &[u8],
    context: &EncryptionContext,
    data_key: Option<String>,
) -> HubResult<Sealed> {
    let cipher = Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(key));
    let mut nonce = [0u8; 12];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    let aad = context.associated_data();
    let ciphertext = cipher
        .encrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: plaintext,
                aad: &aad,
            },
        )
        .map_err(|_| HubError::internal("encryption failed"))?;
    Ok(Sealed {
        data_key,
        nonce: B64.encode(nonce),
        ciphertext: B64.encode(ciphertext),
    })
}

fn aes_open(
    key: &[u8; 32],
    sealed: &Sealed,
    context: &EncryptionContext,
) -> HubResult<Zeroizing<Vec<u8>>> {
    let nonce = decode(&sealed.nonce)?;
    if nonce.len() != 12 {
        return Err(HubError::internal("sealed value has a malformed nonce"));
    }
    let ciphertext = decode(&sealed.ciphertext)?;
    let cipher = Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(key));
    let aad = context.associated_data();
    cipher
        .decrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: &ciphertext,
                aad: &aad,
            },
        )
        .map(Zeroizing::new)
        .map_err(|_| {
            HubError::internal(
                "decryption failed: wrong key or the value belongs to another record",
            )
        })
}

fn decode(field: &str) -> HubResult<Vec<u8>> {
    B64.decode(field)
        .map_err(|_| HubError::internal("sealed value is not valid base64"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_is_authenticated() {
        let key = [7u8; 32];
        let ctx = EncryptionContext::account("a1", "google");
        let sealed = aes_seal(&key, b"secret", &ctx, None).unwrap();
        assert_eq!(&*aes_open(&key, &sealed, &ctx).unwrap(), b"secret");
        assert!(aes_open(&key, &sealed, &EncryptionContext::account("a2", "google")).is_err());
        assert!(aes_open(&key, &sealed, &EncryptionContext::account("a1", "onedrive")).is_err());
        assert!(aes_open(&[8u8; 32], &sealed, &ctx).is_err());
    }
}
