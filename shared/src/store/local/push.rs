//! Push channels (two records each) and the push marks of queued jobs.

use super::*;

/// A push mark: a push job of the account is queued and not started, until `until`.
#[derive(Serialize, Deserialize)]
struct PushMark {
    until: DateTime<Utc>,
}

/// Removes every channel of the account (both records of each).
pub(super) fn remove_channels(root: &Path, account_id: &str) -> io::Result<()> {
    let dir = account_channels_dir(root, account_id);
    let entries = match fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let path = entry?.path();
        // Under the lock no write is under way: a `.tmp-*` file was left by a crash.
        if path.extension().is_some_and(|ext| ext == "json") {
            if let Some(channel) = read_json::<PushChannel>(&path)? {
                remove_durably(&channel_path(root, &channel.provider, &channel.id))?;
            }
        }
        remove_durably(&path)?;
    }
    fs::remove_dir(&dir).or_else(|e| match e.kind() {
        io::ErrorKind::NotFound => Ok(()),
        _ => Err(e),
    })
}

/// Writes both records of a channel (under the lock).
fn write_channel(root: &Path, channel: &PushChannel) -> io::Result<()> {
    // The account's copy first: a crash in between leaves a channel that no notification
    // finds but the worker sees, and removes.
    let own = account_channel_path(root, channel);
    fs::create_dir_all(own.parent().expect("channel paths have a parent"))?;
    write_durably(&own, channel)?;
    write_durably(&channel_path(root, &channel.provider, &channel.id), channel)
}

/// Whether the account still takes push channels (under the lock): the one place that says
/// what a live account is to a channel write, should deletion ever leave something behind
/// the account record first.
fn account_live(root: &Path, account_id: &str) -> io::Result<bool> {
    // A tombstone is not live: a channel confirmed after a `DELETE` began is refused.
    Ok(read_account(&account_path(root, account_id))?.is_some())
}

#[async_trait]
impl PushStore for LocalStore {
    async fn mark_push_pending(
        &self,
        account_id: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> HubResult<bool> {
        if !storable(account_id) {
            return Ok(false);
        }
        let account_id = account_id.to_string();
        self.run(move |root| {
            let _lock = lock(root)?;
            let path = push_mark_path(root, &account_id);
            if read_json::<PushMark>(&path)?.is_some_and(|mark| mark.until > now) {
                return Ok(false);
            }
            write_durably(&path, &PushMark { until })?;
            Ok(true)
        })
        .await
    }

    async fn clear_push_pending(&self, account_id: &str) -> HubResult<()> {
        if !storable(account_id) {
            return Ok(());
        }
        let account_id = account_id.to_string();
        self.run(move |root| {
            let _lock = lock(root)?;
            remove_durably(&push_mark_path(root, &account_id)).map(|_| ())
        })
        .await
    }

    async fn put_channel(&self, channel: &PushChannel) -> HubResult<()> {
        if !channel_storable(channel) {
            return Err(HubError::internal("push channel key too long"));
        }
        let channel = channel.clone();
        self.run(move |root| {
            let _lock = lock(root)?;
            write_channel(root, &channel)
        })
        .await
    }

    async fn put_channel_if_account_live(&self, channel: &PushChannel) -> HubResult<Write> {
        if !channel_storable(channel) {
            return Err(HubError::internal("push channel key too long"));
        }
        let channel = channel.clone();
        self.run(move |root| {
            // Under the lock that `begin_deletion` takes too: the account cannot go between
            // the check and the writes.
            let _lock = lock(root)?;
            if !account_live(root, &channel.account_id)? {
                return Ok(Write::Conflict);
            }
            write_channel(root, &channel)?;
            Ok(Write::Done)
        })
        .await
    }

    async fn get_channel(&self, provider: &str, id: &str) -> HubResult<Option<PushChannel>> {
        if !storable(id) {
            return Ok(None);
        }
        let path = channel_path(&self.root, provider, id);
        self.run(move |_| read_json::<PushChannel>(&path)).await
    }

    async fn get_channels(
        &self,
        provider: &str,
        ids: &[String],
        deadline: Deadline,
    ) -> HubResult<Vec<PushChannel>> {
        let paths: Vec<PathBuf> = distinct_keys(ids)
            .iter()
            .map(|id| channel_path(&self.root, provider, id))
            .collect();
        // One blocking task for the whole batch; a disk that stalls past the deadline fails
        // the read instead of holding the notification's answer.
        let read = self.run(move |_| {
            let mut channels = Vec::new();
            for path in paths {
                channels.extend(read_json::<PushChannel>(&path)?);
            }
            Ok(channels)
        });
        tokio::time::timeout(deadline.remaining(), read)
            .await
            .unwrap_or_else(|_| {
                Err(HubError::Unavailable(
                    "push channels not read by the deadline".into(),
                ))
            })
    }

    async fn account_channels(&self, account_id: &str) -> HubResult<Vec<PushChannel>> {
        if !storable(account_id) {
            return Ok(Vec::new());
        }
        let dir = account_channels_dir(&self.root, account_id);
        self.run(move |_| {
            let entries = match fs::read_dir(&dir) {
                Ok(entries) => entries,
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
                Err(e) => return Err(e),
            };
            let mut channels = Vec::new();
            for entry in entries {
                let path = entry?.path();
                // Skips a write under way (`.tmp-*`).
                if path.extension().is_none_or(|ext| ext != "json") {
                    continue;
                }
                if let Some(channel) = read_json::<PushChannel>(&path)? {
                    channels.push(channel);
                }
            }
            channels.sort_by_key(|channel| channel.created_at);
            Ok(channels)
        })
        .await
    }

    async fn delete_channel(&self, channel: &PushChannel) -> HubResult<()> {
        if !channel_storable(channel) {
            return Ok(());
        }
        let channel = channel.clone();
        self.run(move |root| {
            let _lock = lock(root)?;
            remove_durably(&channel_path(root, &channel.provider, &channel.id))?;
            remove_durably(&account_channel_path(root, &channel)).map(|_| ())
        })
        .await
    }
}
