//! Sealing an account's tokens: the encryption context names the account and provider, so
//! the ciphertext only opens for the record it was written for.

use crate::crypto::{EncryptionContext, Sealed, TokenCipher};
use crate::error::{HubError, HubResult};
use crate::model::{Account, TokenSet};

pub async fn seal(
    cipher: &dyn TokenCipher,
    account_id: &str,
    provider: &str,
    tokens: &TokenSet,
) -> HubResult<Sealed> {
    cipher
        .seal(
            &tokens.to_plaintext(),
            &EncryptionContext::account(account_id, provider),
        )
        .await
}

pub async fn open(cipher: &dyn TokenCipher, account: &Account) -> HubResult<TokenSet> {
    let plaintext = cipher
        .open(
            &account.tokens,
            &EncryptionContext::account(&account.id, &account.provider),
        )
        .await?;
    TokenSet::from_plaintext(&plaintext)
        .map_err(|_| HubError::internal("stored tokens are malformed"))
}
