//! Loads container metadata for one-shot commands: a single resync of each runtime
//! (bounded in time), or a recorded `runtime.json` when replaying a capture.

use crate::cli::RuntimeArgs;
use crate::identity::sources::check_sockets;
use crate::identity::watch::resync_once;
use crate::identity::MetadataStore;
use crate::model::metadata::RecordedMeta;
use anyhow::Context;
use std::time::Duration;

/// How long a one-shot command waits for each runtime.
const ONE_SHOT_TIMEOUT: Duration = Duration::from_secs(3);

/// Loads the answers `cgscope capture` recorded (`--runtime-replay`) into `store`.
pub fn load_replay(file: &std::path::Path, store: &MetadataStore) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("cannot read runtime replay {}", file.display()))?;
    let recorded: Vec<RecordedMeta> = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a runtime recording", file.display()))?;
    store.load(recorded);
    Ok(())
}

/// A store filled once from the runtimes or from the replay file.
pub fn load_once(args: &RuntimeArgs) -> anyhow::Result<MetadataStore> {
    let store = MetadataStore::new();
    if let Some(file) = &args.runtime_replay {
        load_replay(file, &store)?;
        return Ok(store);
    }
    let sockets = args.to_sockets();
    check_sockets(&sockets)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(resync_once(&sockets, &store, ONE_SHOT_TIMEOUT));
    Ok(store)
}
