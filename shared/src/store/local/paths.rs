//! Where each record lives under the data directory (the layout is in the module's parent).

use super::*;

pub(super) fn account_path(root: &Path, id: &str) -> PathBuf {
    root.join("accounts").join(file_name(id))
}

/// The identity record of an owner's account (version 1's name when there is no owner).
pub(super) fn identity_path(
    root: &Path,
    owner: Option<&str>,
    provider: &str,
    provider_user_id: &str,
) -> PathBuf {
    match owner {
        None => root
            .join("identities")
            .join(file_name(&format!("{provider}:{provider_user_id}"))),
        Some(owner) => owners_dir(root, provider, provider_user_id).join(format!(
            "{}.json",
            hex::encode(sha2::Sha256::digest(owner.as_bytes()))
        )),
    }
}

/// Where the identity records of the owners of one provider identity are.
pub(super) fn owners_dir(root: &Path, provider: &str, provider_user_id: &str) -> PathBuf {
    root.join("identities").join(format!(
        "{}.owners",
        hex::encode(format!("{provider}:{provider_user_id}"))
    ))
}

pub(super) fn session_path(root: &Path, id: &str) -> PathBuf {
    root.join("sessions").join(file_name(id))
}

pub(super) fn state_path(root: &Path, state: &str) -> PathBuf {
    root.join("states").join(file_name(state))
}

pub(super) fn link_path(root: &Path, id: &str) -> PathBuf {
    root.join("links").join(file_name(id))
}

pub(super) fn claim_path(root: &Path, key: &str) -> PathBuf {
    root.join("claims").join(file_name(key))
}

pub(super) fn push_mark_path(root: &Path, account_id: &str) -> PathBuf {
    root.join("push-pending").join(file_name(account_id))
}

pub(super) fn channel_path(root: &Path, provider: &str, id: &str) -> PathBuf {
    root.join("channels")
        .join(file_name(&format!("{provider}:{id}")))
}

/// The account's own copies of its channels, so that listing them reads one directory.
pub(super) fn account_channels_dir(root: &Path, account_id: &str) -> PathBuf {
    root.join("account-channels").join(hex::encode(account_id))
}

pub(super) fn account_channel_path(root: &Path, channel: &PushChannel) -> PathBuf {
    account_channels_dir(root, &channel.account_id)
        .join(file_name(&format!("{}:{}", channel.provider, channel.id)))
}
