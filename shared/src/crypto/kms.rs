//! Envelope encryption with KMS: a fresh AES-256 data key from `GenerateDataKey` per write,
//! AES-256-GCM locally, the KMS-encrypted data key stored beside the ciphertext. KMS binds the
//! data key to the encryption context, so `Decrypt` refuses it for any other account.

use async_trait::async_trait;
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::DataKeySpec;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use zeroize::Zeroizing;

use super::{aes_open, aes_seal, EncryptionContext, Sealed, TokenCipher};
use crate::error::{HubError, HubResult};

pub struct KmsCipher {
    client: aws_sdk_kms::Client,
    key_id: String,
}

impl KmsCipher {
    pub fn new(client: aws_sdk_kms::Client, key_id: impl Into<String>) -> Self {
        KmsCipher {
            client,
            key_id: key_id.into(),
        }
    }
}

fn data_key(bytes: &[u8]) -> HubResult<Zeroizing<[u8; 32]>> {
    let key: [u8; 32] = bytes
        .try_into()
        .map_err(|_| HubError::internal("KMS returned a data key that is not 256 bits"))?;
    Ok(Zeroizing::new(key))
}

#[async_trait]
impl TokenCipher for KmsCipher {
    async fn seal(&self, plaintext: &[u8], context: &EncryptionContext) -> HubResult<Sealed> {
        let mut request = self
            .client
            .generate_data_key()
            .key_id(&self.key_id)
            .key_spec(DataKeySpec::Aes256);
        for (k, v) in context.pairs() {
            request = request.encryption_context(*k, v);
        }
        let answer = request.send().await.map_err(|e| {
            HubError::internal(format!(
                "KMS GenerateDataKey failed: {}",
                aws_sdk_kms::error::DisplayErrorContext(e)
            ))
        })?;
        let key = data_key(
            answer
                .plaintext()
                .ok_or_else(|| HubError::internal("KMS returned no data key"))?
                .as_ref(),
        )?;
        let encrypted_key = answer
            .ciphertext_blob()
            .ok_or_else(|| HubError::internal("KMS returned no encrypted data key"))?;
        aes_seal(
            &key,
            plaintext,
            context,
            Some(B64.encode(encrypted_key.as_ref())),
        )
    }

    async fn open(
        &self,
        sealed: &Sealed,
        context: &EncryptionContext,
    ) -> HubResult<Zeroizing<Vec<u8>>> {
        let encrypted_key = sealed.data_key.as_deref().ok_or_else(|| {
            HubError::internal("sealed value has no data key (was it sealed locally?)")
        })?;
        let encrypted_key = B64
            .decode(encrypted_key)
            .map_err(|_| HubError::internal("data key is not base64"))?;
        let mut request = self
            .client
            .decrypt()
            .key_id(&self.key_id)
            .ciphertext_blob(Blob::new(encrypted_key));
        for (k, v) in context.pairs() {
            request = request.encryption_context(*k, v);
        }
        let answer = request.send().await.map_err(|e| {
            HubError::internal(format!(
                "KMS Decrypt failed: {}",
                aws_sdk_kms::error::DisplayErrorContext(e)
            ))
        })?;
        let key = data_key(
            answer
                .plaintext()
                .ok_or_else(|| HubError::internal("KMS returned no plaintext"))?
                .as_ref(),
        )?;
        aes_open(&key, sealed, context)
    }
}
