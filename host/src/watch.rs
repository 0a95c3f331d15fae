//! Hot reload of a folder: the `notify` crate (inotify on Linux) reports changed files, and a
//! task calls back once the folder has gone quiet for [`DEBOUNCE`]. The plugins folder and the
//! calendars folder both reload through it.

use std::path::Path;
use std::time::Duration;

use notify::{RecursiveMode, Watcher as _};
use tokio_util::sync::CancellationToken;

/// How long a folder must stay quiet after a change before it is reloaded (an editor's save
/// or a `cp` is several events).
pub const DEBOUNCE: Duration = Duration::from_millis(300);

/// Watches `dir` (not its subfolders) until `cancel`: after a file whose extension is one of
/// `extensions` is added, changed or removed, and then [`DEBOUNCE`] without another such
/// change, awaits `reload()`. An error when the folder cannot be watched.
pub fn watch_folder<F, Fut>(
    dir: &Path,
    extensions: &'static [&'static str],
    cancel: CancellationToken,
    mut reload: F,
) -> Result<tokio::task::JoinHandle<()>, notify::Error>
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        let relevant = event.is_ok_and(|e| {
            !e.kind.is_access()
                && e.paths.iter().any(|p| p.extension().is_some_and(|x| extensions.iter().any(|w| x == *w)))
        });
        if relevant {
            let _ = tx.send(());
        }
    })?;
    watcher.watch(dir, RecursiveMode::NonRecursive)?;
    Ok(tokio::spawn(async move {
        let _watcher = watcher; // dropped (and unregistered) when the task ends
        loop {
            tokio::select! {
                () = cancel.cancelled() => return,
                got = rx.recv() => if got.is_none() { return },
            }
            while let Ok(Some(())) = tokio::time::timeout(DEBOUNCE, rx.recv()).await {}
            reload().await;
        }
    }))
}
