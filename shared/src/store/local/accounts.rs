//! Accounts, their identity records, and the tombstones of their deletes.

use super::push::remove_channels;
use super::*;

#[derive(Serialize, Deserialize)]
pub(super) struct IdentityRecord {
    account_id: String,
}

/// Creates the account and its identity record when neither exists; the caller holds the
/// store's lock.
pub(super) fn create_account_locked(root: &Path, account: &Account) -> io::Result<Write> {
    let identity = identity_path(
        root,
        account.owner.as_deref(),
        &account.provider,
        &account.provider_user_id,
    );
    let path = account_path(root, &account.id);
    // An identity left pointing at a tombstone (a crash in the middle of a delete) is
    // released too.
    let claimed = match read_json::<IdentityRecord>(&identity)? {
        Some(record) => read_account(&account_path(root, &record.account_id))?.is_some(),
        None => false,
    };
    if claimed || path.exists() {
        return Ok(Write::Conflict);
    }
    // The identity first, then the account: a crash between the two leaves an identity
    // pointing at no account, which counts as unclaimed and is overwritten by the next
    // login, so no orphan account ever shows in /users.
    let identities = root.join("identities");
    let parent = identity.parent().expect("identity paths have a parent");
    if parent != identities && !parent.exists() {
        fs::create_dir_all(parent)?;
        sync_dir(&identities)?;
    }
    write_durably(
        &identity,
        &IdentityRecord {
            account_id: account.id.clone(),
        },
    )?;
    write_durably(&path, account)?;
    Ok(Write::Done)
}

/// Replaces the account when it is still at `expected_version`; the caller holds the lock.
pub(super) fn update_account_locked(
    root: &Path,
    account: &Account,
    expected_version: u64,
) -> io::Result<Write> {
    let path = account_path(root, &account.id);
    // A tombstone is no account: a sync's write of a deleted account fails.
    match read_account(&path)? {
        Some(stored) if stored.version == expected_version => {
            write_durably(&path, account)?;
            Ok(Write::Done)
        }
        _ => Ok(Write::Conflict),
    }
}

impl LocalStore {
    /// One page of the live accounts that `keep` keeps, in id order, after the id `after`:
    /// tombstones are no accounts.
    async fn live_accounts(
        &self,
        after: Option<&str>,
        limit: usize,
        keep: impl Fn(&Account) -> bool + Send + 'static,
    ) -> HubResult<Page<Account>> {
        let after = after.map(str::to_string);
        let page = self
            .run(move |root| {
                read_page(
                    &root.join("accounts"),
                    after.as_deref(),
                    limit,
                    |file: &AccountFile| matches!(file, AccountFile::Live(a) if keep(a)),
                )
            })
            .await?;
        Ok(Page {
            items: page
                .items
                .into_iter()
                .filter_map(AccountFile::live)
                .collect(),
            next: page.next,
        })
    }
}

#[async_trait]
impl AccountStore for LocalStore {
    async fn get_account(&self, id: &str) -> HubResult<Option<Account>> {
        if !storable(id) {
            return Ok(None);
        }
        let id = id.to_string();
        self.run(move |root| read_account(&account_path(root, &id)))
            .await
    }

    async fn find_account(
        &self,
        owner: Option<&str>,
        provider: &str,
        provider_user_id: &str,
    ) -> HubResult<Option<Account>> {
        let path_of_identity = identity_path(&self.root, owner, provider, provider_user_id);
        self.run(
            move |root| match read_json::<IdentityRecord>(&path_of_identity)? {
                Some(identity) => read_account(&account_path(root, &identity.account_id)),
                None => Ok(None),
            },
        )
        .await
    }

    async fn identity_holders(
        &self,
        provider: &str,
        provider_user_id: &str,
    ) -> HubResult<Vec<String>> {
        let (provider, user) = (provider.to_string(), provider_user_id.to_string());
        self.run(move |root| {
            let mut holders = Vec::new();
            if let Some(record) =
                read_json::<IdentityRecord>(&identity_path(root, None, &provider, &user))?
            {
                holders.push(record.account_id);
            }
            let owners = owners_dir(root, &provider, &user);
            for name in sorted_names(&owners, None)? {
                if let Some(record) = read_json::<IdentityRecord>(&owners.join(name))? {
                    holders.push(record.account_id);
                }
            }
            Ok(holders)
        })
        .await
    }

    async fn create_account(&self, account: &Account) -> HubResult<Write> {
        let account = account.clone();
        self.run(move |root| {
            let _lock = lock(root)?;
            create_account_locked(root, &account)
        })
        .await
    }

    async fn update_account(&self, account: &Account, expected_version: u64) -> HubResult<Write> {
        let account = account.clone();
        self.run(move |root| {
            let _lock = lock(root)?;
            update_account_locked(root, &account, expected_version)
        })
        .await
    }

    async fn list_accounts(
        &self,
        provider: &str,
        after: Option<&str>,
        limit: usize,
    ) -> HubResult<Page<Account>> {
        let provider = provider.to_string();
        self.live_accounts(after, limit, move |a| a.provider == provider)
            .await
    }

    async fn list_account_views(
        &self,
        scope: &AccountScope,
        after: Option<&str>,
        limit: usize,
    ) -> HubResult<Page<AccountView>> {
        // An account file is a few hundred bytes: reading it whole costs nothing here, and a
        // development store can filter the owner by reading (DynamoDB keeps an owner index).
        let scope = scope.clone();
        let page = self
            .live_accounts(after, limit, move |a| {
                a.provider == scope.provider
                    && scope
                        .owner
                        .as_ref()
                        .is_none_or(|owner| a.owner.as_ref() == Some(owner))
            })
            .await?;
        Ok(Page {
            items: page.items.iter().map(AccountView::from).collect(),
            next: page.next,
        })
    }

    async fn list_active_account_ids(
        &self,
        provider: &str,
        after: Option<&str>,
        limit: usize,
    ) -> HubResult<Page<String>> {
        let page = self.list_accounts(provider, after, limit).await?;
        Ok(Page {
            items: page
                .items
                .into_iter()
                .filter(|a| a.status == AccountStatus::Active)
                .map(|a| a.id)
                .collect(),
            next: page.next,
        })
    }

    async fn begin_deletion(&self, account: &Account, deletion: &Deletion) -> HubResult<Write> {
        if !storable(&account.id) {
            return Ok(Write::Conflict);
        }
        let deletion = deletion.clone();
        let (owner, provider, user) = (
            account.owner.clone(),
            account.provider.clone(),
            account.provider_user_id.clone(),
        );
        let (id, version) = (account.id.clone(), account.version);
        self.run(move |root| {
            let _lock = lock(root)?;
            let path = account_path(root, &id);
            match read_account(&path)? {
                Some(stored) if stored.version == version => {}
                _ => return Ok(Write::Conflict),
            }
            // The tombstone first, over the account (tokens and all): a crash right after
            // leaves an identity pointing at a tombstone, which counts as released (a new
            // login makes a new account) and which `end_deletion` removes.
            write_durably(&path, &AccountFile::Deleting(Box::new(deletion)))?;
            let identity = identity_path(root, owner.as_deref(), &provider, &user);
            if read_json::<IdentityRecord>(&identity)?.is_some_and(|record| record.account_id == id)
            {
                remove_durably(&identity)?;
            }
            Ok(Write::Done)
        })
        .await
    }

    async fn get_deletion(&self, id: &str) -> HubResult<Option<Deletion>> {
        if !storable(id) {
            return Ok(None);
        }
        let id = id.to_string();
        self.run(move |root| {
            Ok(read_json::<AccountFile>(&account_path(root, &id))?.and_then(AccountFile::deleting))
        })
        .await
    }

    async fn update_deletion(
        &self,
        deletion: &Deletion,
        expected_version: u64,
    ) -> HubResult<Write> {
        if !storable(&deletion.account_id) {
            return Ok(Write::Conflict);
        }
        let deletion = deletion.clone();
        self.run(move |root| {
            let _lock = lock(root)?;
            let path = account_path(root, &deletion.account_id);
            match read_json::<AccountFile>(&path)?.and_then(AccountFile::deleting) {
                Some(stored) if stored.version == expected_version => {
                    write_durably(&path, &AccountFile::Deleting(Box::new(deletion)))?;
                    Ok(Write::Done)
                }
                _ => Ok(Write::Conflict),
            }
        })
        .await
    }

    async fn purge_page(&self, account_id: &str, limit: usize) -> HubResult<bool> {
        if !storable(account_id) {
            return Ok(true);
        }
        let account_id = account_id.to_string();
        self.run_index(move |index| index.purge_page(&account_id, limit))
            .await
    }

    async fn end_deletion(&self, deletion: &Deletion) -> HubResult<Write> {
        if !storable(&deletion.account_id) {
            return Ok(Write::Conflict);
        }
        let deletion = deletion.clone();
        self.run(move |root| {
            let _lock = lock(root)?;
            let id = &deletion.account_id;
            let path = account_path(root, id);
            match read_json::<AccountFile>(&path)?.and_then(AccountFile::deleting) {
                Some(stored) if stored.version == deletion.version => {}
                _ => return Ok(Write::Conflict),
            }
            remove_channels(root, id)?;
            remove_durably(&push_mark_path(root, id))?;
            let identity = identity_path(
                root,
                deletion.owner.as_deref(),
                &deletion.provider,
                &deletion.provider_user_id,
            );
            if read_json::<IdentityRecord>(&identity)?
                .is_some_and(|record| &record.account_id == id)
            {
                remove_durably(&identity)?;
            }
            // Last: while it is there, a repeated DELETE answers 204 and the purge goes on.
            remove_durably(&path)?;
            Ok(Write::Done)
        })
        .await
    }
}
