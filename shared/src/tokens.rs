//! Sealing an account's tokens: the encryption context names the account and provider, so
//! the ciphertext only opens for the record it was written for.

use crate::crypto::{EncryptionContext, Sealed};
use crate::error::{HubError, HubResult};
use crate::hub::Hub;
use crate::model::{Account, TokenSet};

pub async fn seal(
    hub: &Hub,
    account_id: &str,
    provider: &str,
    tokens: &TokenSet,
) -> HubResult<Sealed> {
    hub.cipher
        .seal(
            &tokens.to_plaintext(),
            &EncryptionContext::account(account_id, provider),
        )
        .await
}

pub async fn open(hub: &Hub, account: &Account) -> HubResult<TokenSet> {
    let plaintext = hub
        .cipher
        .open(
            &account.tokens,
            &EncryptionContext::account(&account.id, &account.provider),
        )
        .await?;
    TokenSet::from_plaintext(&plaintext)
        .map_err(|_| HubError::internal("stored tokens are malformed"))
}
