//! The runtime plug-in point: what every runtime client does (connect, list and inspect into
//! the store, follow events) and the one list of runtimes cgscope asks. Adding a runtime API
//! is one file implementing [`RuntimeClient`], its `mod` line and one line in [`SOURCES`].

use super::containerd::ContainerdClient;
use super::docker::DockerClient;
use super::store::MetadataStore;
use super::RuntimeError;
use crate::model::container::Runtime;
use futures_util::future::BoxFuture;
use std::future::Future;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Every runtime cgscope asks, in order of precedence: when two runtimes report the same
/// container id (Docker's containers also live in containerd's `moby` namespace), the
/// earlier one's record is kept. Each entry also makes a `--<runtime>-socket` flag.
pub const SOURCES: &[Source] = &[
    Source::of::<DockerClient>(),
    Source::of::<ContainerdClient>(),
];

/// A client of one runtime's API. Counts its calls in the store's state for its runtime
/// and never reads cgroup files.
pub trait RuntimeClient: Sized + Send + Sync + 'static {
    /// The runtime this client asks.
    const RUNTIME: Runtime;
    /// The flag that names its API socket.
    const SOCKET: SocketFlag;

    /// Connects and checks the API answers.
    fn connect(
        socket: &Path,
        store: &MetadataStore,
    ) -> impl Future<Output = Result<Self, RuntimeError>> + Send;

    /// Lists every container (inspecting what the list leaves out) and replaces this
    /// runtime's entries in the store; how many containers it listed.
    fn resync(&self) -> impl Future<Output = Result<usize, RuntimeError>> + Send;

    /// Follows the runtime's events until the stream ends or fails, applying them to the
    /// store, and resyncs every `resync` on the side.
    fn follow(&self, resync: Duration) -> impl Future<Output = Result<(), RuntimeError>> + Send;
}

/// The `--<runtime>-socket` flag of a runtime.
#[derive(Debug, Clone, Copy)]
pub struct SocketFlag {
    /// The flag without `--`: `<runtime>-socket`.
    pub flag: &'static str,
    /// Its environment variable: `CGSCOPE_<RUNTIME>_SOCKET`.
    pub env: &'static str,
    /// Where the socket is on a usual node.
    pub default_path: &'static str,
    /// The flag's help.
    pub help: &'static str,
}

/// A connected client of any runtime (the object-safe face of [`RuntimeClient`]).
pub trait Connected: Send + Sync {
    /// [`RuntimeClient::resync`].
    fn resync(&self) -> BoxFuture<'_, Result<usize, RuntimeError>>;
    /// [`RuntimeClient::follow`].
    fn follow(&self, resync: Duration) -> BoxFuture<'_, Result<(), RuntimeError>>;
}

impl<C: RuntimeClient> Connected for C {
    fn resync(&self) -> BoxFuture<'_, Result<usize, RuntimeError>> {
        Box::pin(RuntimeClient::resync(self))
    }
    fn follow(&self, resync: Duration) -> BoxFuture<'_, Result<(), RuntimeError>> {
        Box::pin(RuntimeClient::follow(self, resync))
    }
}

type Connect = for<'a> fn(
    &'a Path,
    &'a MetadataStore,
) -> BoxFuture<'a, Result<Box<dyn Connected>, RuntimeError>>;

/// One entry of [`SOURCES`]: a runtime and how to reach it.
pub struct Source {
    /// The runtime.
    pub runtime: Runtime,
    /// The flag that names its socket.
    pub socket: SocketFlag,
    connect: Connect,
}

impl Source {
    /// The entry of a client type.
    pub const fn of<C: RuntimeClient>() -> Self {
        Source {
            runtime: C::RUNTIME,
            socket: C::SOCKET,
            connect: connect_boxed::<C>,
        }
    }

    /// The entry of `runtime`, `None` when cgscope has no client for it.
    pub fn find(runtime: Runtime) -> Option<&'static Source> {
        SOURCES.iter().find(|s| s.runtime == runtime)
    }

    /// Connects to the runtime's API at `socket`.
    pub async fn connect(
        &self,
        socket: &Path,
        store: &MetadataStore,
    ) -> Result<Box<dyn Connected>, RuntimeError> {
        (self.connect)(socket, store).await
    }
}

fn connect_boxed<'a, C: RuntimeClient>(
    socket: &'a Path,
    store: &'a MetadataStore,
) -> BoxFuture<'a, Result<Box<dyn Connected>, RuntimeError>> {
    Box::pin(async move {
        let client = C::connect(socket, store).await?;
        Ok(Box::new(client) as Box<dyn Connected>)
    })
}

/// The runtime sockets to watch, in [`SOURCES`] order; a runtime left out is not asked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuntimeSockets(pub Vec<(Runtime, PathBuf)>);

impl RuntimeSockets {
    /// The socket of `runtime`, if it is watched.
    pub fn get(&self, runtime: Runtime) -> Option<&Path> {
        self.0
            .iter()
            .find(|(r, _)| *r == runtime)
            .map(|(_, p)| p.as_path())
    }
}

/// `docker=/var/run/docker.sock containerd=off`: every known runtime, as logs show it.
impl std::fmt::Display for RuntimeSockets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, source) in SOURCES.iter().enumerate() {
            let sep = if i == 0 { "" } else { " " };
            match self.get(source.runtime) {
                Some(p) => write!(f, "{sep}{}={}", source.runtime, p.display())?,
                None => write!(f, "{sep}{}=off", source.runtime)?,
            }
        }
        Ok(())
    }
}

/// Fails when a configured socket path exists but is not a socket (a typo or a wrong mount);
/// an absent socket is fine: the runtime may start later.
pub fn check_sockets(sockets: &RuntimeSockets) -> Result<(), RuntimeError> {
    for (runtime, path) in &sockets.0 {
        if let Ok(meta) = std::fs::metadata(path) {
            if !meta.file_type().is_socket() {
                return Err(RuntimeError::NotASocket {
                    runtime: *runtime,
                    path: path.clone(),
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_runtime_has_one_source_and_docker_comes_before_containerd() {
        let runtimes: Vec<Runtime> = SOURCES.iter().map(|s| s.runtime).collect();
        let mut unique = runtimes.clone();
        unique.dedup();
        assert_eq!(unique, runtimes);
        // Docker's records of its own containers win over containerd's `moby` copies.
        assert_eq!(&runtimes[..2], [Runtime::Docker, Runtime::Containerd]);
        assert!(Source::find(Runtime::CriO).is_none());
        for s in SOURCES {
            let name = s.runtime.as_str();
            assert_eq!(s.socket.flag, format!("{name}-socket"));
            assert_eq!(
                s.socket.env,
                format!("CGSCOPE_{}_SOCKET", name.to_uppercase())
            );
        }
    }

    #[test]
    fn only_an_existing_path_that_is_not_a_socket_is_refused() {
        let file =
            std::env::temp_dir().join(format!("cgscope-not-a-socket-{}", std::process::id()));
        std::fs::write(&file, b"").unwrap();
        let refused = RuntimeSockets(vec![(Runtime::Docker, file.clone())]);
        let err = check_sockets(&refused).unwrap_err().to_string();
        std::fs::remove_file(&file).unwrap();
        assert!(
            err.contains("docker") && err.contains("not a unix socket"),
            "{err}"
        );
        let absent = RuntimeSockets(vec![(Runtime::Containerd, "/nonexistent/c.sock".into())]);
        assert!(check_sockets(&absent).is_ok());
        assert_eq!(
            absent.get(Runtime::Containerd),
            Some(Path::new("/nonexistent/c.sock"))
        );
        assert_eq!(absent.get(Runtime::Docker), None);
    }
}
