//! The local cipher: AES-256-GCM with `HUB_LOCAL_KEY`, or a key generated once into the data
//! dir with mode 0600.

use std::fs;
use std::io::Write;
use std::path::Path;

use async_trait::async_trait;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use zeroize::Zeroizing;

use super::{aes_open, aes_seal, EncryptionContext, Sealed, TokenCipher};
use crate::error::{HubError, HubResult};

const KEY_FILE: &str = "local.key";

pub struct LocalCipher {
    key: Zeroizing<[u8; 32]>,
}

impl LocalCipher {
    /// The configured key, or the one in `data_dir/local.key`, created when missing.
    pub fn load(configured: Option<&SecretString>, data_dir: &Path) -> HubResult<Self> {
        let encoded = match configured {
            Some(key) => Zeroizing::new(key.expose_secret().to_string()),
            None => load_or_create_key_file(data_dir)?,
        };
        let bytes = Zeroizing::new(
            B64.decode(encoded.trim())
                .map_err(|_| HubError::Config("HUB_LOCAL_KEY must be base64".into()))?,
        );
        let key: [u8; 32] = bytes.as_slice().try_into().map_err(|_| {
            HubError::Config("HUB_LOCAL_KEY must decode to exactly 32 bytes".into())
        })?;
        Ok(LocalCipher {
            key: Zeroizing::new(key),
        })
    }
}

fn load_or_create_key_file(data_dir: &Path) -> HubResult<Zeroizing<String>> {
    let path = data_dir.join(KEY_FILE);
    if let Ok(existing) = fs::read_to_string(&path) {
        return Ok(Zeroizing::new(existing));
    }
    fs::create_dir_all(data_dir)
        .map_err(|e| HubError::internal(format!("creating {}: {e}", data_dir.display())))?;
    let mut key = Zeroizing::new([0u8; 32]);
    rand::rngs::OsRng.fill_bytes(key.as_mut());
    let encoded = Zeroizing::new(B64.encode(key.as_ref()));
    // Write to a private temp file and hard-link it into place: if two processes start at
    // once, exactly one key wins and the loser reads the winner's.
    let tmp = data_dir.join(format!(".{KEY_FILE}.{}", uuid::Uuid::new_v4()));
    {
        let mut options = fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options
            .open(&tmp)
            .map_err(|e| HubError::internal(format!("creating the local key: {e}")))?;
        file.write_all(encoded.as_bytes())
            .and_then(|_| file.sync_all())
            .map_err(|e| HubError::internal(format!("writing the local key: {e}")))?;
    }
    let linked = fs::hard_link(&tmp, &path);
    let _ = fs::remove_file(&tmp);
    match linked {
        Ok(()) => Ok(encoded),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => fs::read_to_string(&path)
            .map(Zeroizing::new)
            .map_err(|e| HubError::internal(format!("reading the local key: {e}"))),
        Err(e) => Err(HubError::internal(format!("installing the local key: {e}"))),
    }
}

#[async_trait]
impl TokenCipher for LocalCipher {
    async fn seal(&self, plaintext: &[u8], context: &EncryptionContext) -> HubResult<Sealed> {
        aes_seal(&self.key, plaintext, context, None)
    }

    async fn open(
        &self,
        sealed: &Sealed,
        context: &EncryptionContext,
    ) -> HubResult<Zeroizing<Vec<u8>>> {
        aes_open(&self.key, sealed, context)
    }
}
