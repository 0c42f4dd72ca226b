//! Command-line flags, exactly as typed (clap derive). Every flag can also be set from the
//! environment (`CGSCOPE_*`). The only module that knows about argv and env.

use crate::identity::sources::{RuntimeSockets, SOURCES};
use crate::model::container::Runtime;
use crate::scan::Roots;
use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// Per-node container resource collector.
#[derive(Debug, Parser)]
#[command(name = "cgscope", version, about)]
pub struct Cli {
    #[command(flatten)]
    pub roots: RootArgs,
    #[command(flatten)]
    pub runtimes: RuntimeArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Where the system is read from.
#[derive(Debug, Clone, clap::Args)]
pub struct RootArgs {
    /// The cgroup mount to read (v1, v2 or hybrid are detected under it).
    #[arg(
        long,
        global = true,
        env = "CGSCOPE_CGROUP_ROOT",
        default_value = "/sys/fs/cgroup"
    )]
    pub cgroup_root: PathBuf,
    /// The proc mount to read (machine info, device names, per-process network counters).
    #[arg(
        long,
        global = true,
        env = "CGSCOPE_PROC_ROOT",
        default_value = "/proc"
    )]
    pub proc_root: PathBuf,
    /// File holding the machine id; an empty value skips it.
    #[arg(long, global = true, env = "CGSCOPE_MACHINE_ID_FILE", default_value = "/etc/machine-id", value_parser = possibly_empty_path())]
    pub machine_id_file: PathBuf,
}

/// clap's path parser rejects empty values; these flags use "empty" to mean "off".
fn possibly_empty_path() -> impl clap::builder::TypedValueParser<Value = PathBuf> {
    clap::builder::TypedValueParser::map(clap::builder::OsStringValueParser::new(), PathBuf::from)
}

/// A size: a whole number of bytes with an optional `B`, `KiB`, `MiB` or `GiB`.
fn parse_bytes(text: &str) -> Result<u64, String> {
    let digits = text.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let shift = match &text[digits.len()..] {
        "" | "B" => 0,
        "KiB" => 10,
        "MiB" => 20,
        "GiB" => 30,
        unit => return Err(format!("unknown unit {unit:?}: use B, KiB, MiB or GiB")),
    };
    let n: u64 = digits
        .trim()
        .parse()
        .map_err(|e| format!("{digits:?} is not a whole number: {e}"))?;
    n.checked_mul(1 << shift)
        .ok_or_else(|| format!("{text} is too large"))
}

impl RootArgs {
    /// The roots as the scanner takes them.
    pub fn to_roots(&self) -> Roots {
        Roots {
            cgroup_root: self.cgroup_root.clone(),
            proc_root: self.proc_root.clone(),
            machine_id_file: (!self.machine_id_file.as_os_str().is_empty())
                .then(|| self.machine_id_file.clone()),
        }
    }
}

/// Where container metadata comes from.
#[derive(Debug, Clone, clap::Args)]
pub struct RuntimeArgs {
    #[command(flatten)]
    pub sockets: SocketArgs,
    /// Replay runtime answers recorded by `cgscope capture` (DIR/runtime.json) instead of
    /// asking the runtimes; for fixtures and bug reports.
    #[arg(long, global = true, env = "CGSCOPE_RUNTIME_REPLAY")]
    pub runtime_replay: Option<PathBuf>,
}

impl RuntimeArgs {
    /// The sockets to watch (none when replaying).
    pub fn to_sockets(&self) -> RuntimeSockets {
        if self.runtime_replay.is_some() {
            return RuntimeSockets::default();
        }
        RuntimeSockets(
            self.sockets
                .0
                .iter()
                .filter(|(_, p)| !p.as_os_str().is_empty())
                .cloned()
                .collect(),
        )
    }
}

/// One `--<runtime>-socket` flag (and `CGSCOPE_<RUNTIME>_SOCKET`) per runtime of
/// `identity::sources::SOURCES`; an empty value disables that runtime.
#[derive(Debug, Clone, Default)]
pub struct SocketArgs(pub Vec<(Runtime, PathBuf)>);

impl clap::FromArgMatches for SocketArgs {
    fn from_arg_matches(matches: &clap::ArgMatches) -> Result<Self, clap::Error> {
        Ok(SocketArgs(
            SOURCES
                .iter()
                .map(|s| {
                    let path = matches.get_one::<PathBuf>(s.socket.flag).cloned();
                    (s.runtime, path.unwrap_or_default())
                })
                .collect(),
        ))
    }

    fn update_from_arg_matches(&mut self, matches: &clap::ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(matches)?;
        Ok(())
    }
}

impl clap::Args for SocketArgs {
    fn augment_args(cmd: clap::Command) -> clap::Command {
        SOURCES.iter().fold(cmd, |cmd, s| {
            cmd.arg(
                clap::Arg::new(s.socket.flag)
                    .long(s.socket.flag)
                    .value_name(s.socket.env.trim_start_matches("CGSCOPE_"))
                    .global(true)
                    .env(s.socket.env)
                    .default_value(s.socket.default_path)
                    .value_parser(possibly_empty_path())
                    .help(s.socket.help),
            )
        })
    }

    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        Self::augment_args(cmd)
    }
}

// Parsed once at start-up and matched once: the size of the serve variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print one complete snapshot of every cgroup plus machine info.
    Snapshot {
        /// Output format.
        #[arg(long, env = "CGSCOPE_FORMAT", value_enum, default_value_t = SnapshotFormat::Json)]
        format: SnapshotFormat,
    },
    /// Run the node daemon: sample every interval, serve /metrics, the JSON API and probes.
    Serve(ServeArgs),
    /// A `docker stats` replacement: live CPU, memory, network, block IO and PIDs per container
    /// (Docker, containerd and Kubernetes alike).
    Top(TopArgs),
    /// Copy exactly the files a snapshot reads into DIR, as a fixture that replays with
    /// `cgscope snapshot --cgroup-root DIR/cgroup --proc-root DIR/proc --machine-id-file DIR/machine-id`.
    Capture {
        /// Destination directory; must be absent or empty.
        dir: PathBuf,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SnapshotFormat {
    Json,
}

/// Flags of `cgscope serve`.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on (cAdvisor's port, so scrape configs carry over).
    #[arg(long, env = "CGSCOPE_LISTEN", default_value = "0.0.0.0:8080")]
    pub listen: String,
    /// Time between samples (e.g. 1s, 500ms).
    #[arg(long, env = "CGSCOPE_INTERVAL", default_value = "1s", value_parser = humantime::parse_duration)]
    pub interval: std::time::Duration,
    /// How much per-cgroup history to keep for the API and UI.
    #[arg(long, env = "CGSCOPE_HISTORY", default_value = "2m", value_parser = humantime::parse_duration)]
    pub history: std::time::Duration,
    /// Hard cap on history points per cgroup, whatever the interval.
    #[arg(long, env = "CGSCOPE_HISTORY_POINTS", default_value_t = 600)]
    pub history_points: usize,
    /// Longest time a figure may be carried over instead of read: limits are re-read, and a
    /// cgroup whose CPU usage did not move since the last sample (none of its tasks ran) is
    /// read in full, at least this often. 0s reads every file at every sample.
    #[arg(long, env = "CGSCOPE_FULL_READ_EVERY", default_value = "10s", value_parser = humantime::parse_duration)]
    pub full_read_every: std::time::Duration,
    /// Cgroup files kept open between samples: a file read at every sample (the idle probe,
    /// a busy cgroup's counters) is then read with one pread instead of an open, read and
    /// close. Each pins about 4.5 KiB of kernel memory, charged to cgscope's own cgroup.
    /// 0 opens every file at every read.
    #[arg(long, env = "CGSCOPE_KEPT_FILES", default_value_t = 8192)]
    pub kept_files: usize,
    /// Runtime label keys exported as container_label_<key> (comma-separated; default none).
    #[arg(long, env = "CGSCOPE_LABEL_ALLOWLIST", value_delimiter = ',')]
    pub label_allowlist: Vec<String>,
    /// Write container_cpu_usage_seconds_total per CPU (cpu="cpu00", ...) instead of one
    /// cpu="total" series, as standalone cAdvisor does (the kubelet writes total only).
    #[arg(long, env = "CGSCOPE_PER_CPU")]
    pub per_cpu: bool,
    /// Report only cgroups whose path matches one of these globs (`*` stays within one
    /// path component, `**` crosses them); comma-separated or repeated.
    #[arg(long, env = "CGSCOPE_INCLUDE", value_delimiter = ',')]
    pub include: Vec<String>,
    /// Never report cgroups whose path matches one of these globs.
    #[arg(long, env = "CGSCOPE_EXCLUDE", value_delimiter = ',')]
    pub exclude: Vec<String>,
    /// Report only containers and pods. By default every cgroup is reported, as cAdvisor does.
    #[arg(long, env = "CGSCOPE_ONLY_CONTAINERS")]
    pub only_containers: bool,
    /// How often runtime metadata is fully re-listed, besides following events.
    #[arg(long, env = "CGSCOPE_RUNTIME_RESYNC", default_value = "60s", value_parser = humantime::parse_duration)]
    pub runtime_resync: std::time::Duration,
    /// Serve HTTPS with this PEM certificate chain (needs --tls-key); reloaded when its
    /// contents change.
    #[arg(long, env = "CGSCOPE_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert (PKCS#8, PKCS#1 or SEC1); reloaded when its contents
    /// change.
    #[arg(long, env = "CGSCOPE_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// PEM CA bundle for client certificates (mTLS, needs --tls-cert): a client certificate it
    /// signed authenticates; without one (or a token) every route but /healthz and /readyz
    /// answers 401, and a certificate from another CA fails the handshake.
    #[arg(long, env = "CGSCOPE_CLIENT_CA", requires = "tls_cert")]
    pub client_ca: Option<PathBuf>,
    /// File of bearer tokens, one per line: every route but /healthz and /readyz then needs
    /// `Authorization: Bearer <token>` (or, with --client-ca, a client certificate); browsers
    /// trade a token for a session cookie at /login.
    #[arg(long, env = "CGSCOPE_BEARER_TOKEN_FILE")]
    pub bearer_token_file: Option<PathBuf>,
    /// How often the TLS and token files are read; those whose contents changed are reloaded.
    #[arg(long, env = "CGSCOPE_CREDENTIALS_RELOAD_INTERVAL", default_value = "5s", value_parser = humantime::parse_duration)]
    pub credentials_reload_interval: std::time::Duration,
    /// Connections open at once, and never more than the open-file limit less 128; one more is
    /// closed as soon as it is accepted.
    #[arg(long, env = "CGSCOPE_MAX_CONNECTIONS", default_value_t = crate::http::DEFAULT_MAX_CONNECTIONS)]
    pub max_connections: usize,
    /// A response write that makes no progress for this long closes its connection.
    #[arg(long, env = "CGSCOPE_WRITE_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub write_timeout: std::time::Duration,
    /// Bytes that cached bodies of earlier ticks, still held by unfinished responses, may take
    /// (`B`, `KiB`, `MiB`, `GiB`); past it, connections that stopped reading (no progress for
    /// 1 s) and hold the oldest are closed, past twice it also those still reading. Bodies of the current tick and of the last second are
    /// always allowed; 0 allows only them.
    #[arg(long, env = "CGSCOPE_STALE_BODY_BUDGET", default_value = "24MiB", value_parser = parse_bytes)]
    pub stale_body_budget: u64,
    /// Host names a request's `Host` header may give besides IP addresses and `localhost`
    /// (comma-separated; e.g. a Service's DNS name): any other is refused with 403, against
    /// DNS rebinding.
    #[arg(long, env = "CGSCOPE_ALLOWED_HOSTS", value_delimiter = ',')]
    pub allowed_hosts: Vec<String>,
}

/// Flags of `cgscope top`.
#[derive(Debug, Clone, clap::Args)]
pub struct TopArgs {
    /// Show only these containers (name, id or id prefix, or namespace/pod/container).
    pub containers: Vec<String>,
    /// Include pods and every other cgroup, not only containers.
    #[arg(short, long)]
    pub all: bool,
    /// Print one table (after one interval, for CPU %) and exit.
    #[arg(long)]
    pub no_stream: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = TopFormat::Table)]
    pub format: TopFormat,
    /// Do not truncate container ids.
    #[arg(long)]
    pub no_trunc: bool,
    /// Time between refreshes.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    pub interval: std::time::Duration,
    /// Read a running `cgscope serve` (e.g. http://127.0.0.1:8080, or https:// with --ca)
    /// instead of sampling here.
    #[arg(long, env = "CGSCOPE_SERVER")]
    pub server: Option<String>,
    /// File whose first token is sent to --server as `Authorization: Bearer <token>` (the
    /// format of serve's --bearer-token-file).
    #[arg(long, env = "CGSCOPE_SERVER_TOKEN_FILE", requires = "server")]
    pub token_file: Option<PathBuf>,
    /// PEM CA bundle that verifies an https:// --server's certificate (needed for https).
    #[arg(long, env = "CGSCOPE_SERVER_CA", requires = "server")]
    pub ca: Option<PathBuf>,
    /// PEM client certificate chain presented to an https:// --server (mTLS; needs --key).
    #[arg(long, env = "CGSCOPE_SERVER_CERT", requires_all = ["server", "key"])]
    pub cert: Option<PathBuf>,
    /// PEM private key of --cert (PKCS#8, PKCS#1 or SEC1).
    #[arg(long, env = "CGSCOPE_SERVER_KEY", requires_all = ["server", "cert"])]
    pub key: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TopFormat {
    Table,
    Json,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_binary_units() {
        assert_eq!(parse_bytes("24MiB"), Ok(24 << 20));
        assert_eq!(parse_bytes("0"), Ok(0));
        assert_eq!(parse_bytes("512B"), Ok(512));
        assert_eq!(parse_bytes("3KiB"), Ok(3072));
        assert_eq!(parse_bytes("1GiB"), Ok(1 << 30));
        for bad in ["", "MiB", "24MB", "-1", "1.5MiB", "99999999999GiB"] {
            assert!(parse_bytes(bad).is_err(), "{bad}");
        }
    }
}
