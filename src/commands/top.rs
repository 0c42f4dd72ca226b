//! `cgscope top`: samples in process (or reads a `cgscope serve` over HTTP or HTTPS, with a
//! bearer token or client certificate when it asks for one) and shows
//! `docker stats`' table: one table with `--no-stream`, plain tables when stdout is not a
//! terminal, and an interactive view (sort, filter, resize) on a terminal.

use crate::cli::{RuntimeArgs, TopArgs, TopFormat};
use crate::export::top::{self, TopEntry, TopRow, TopSample};
use crate::http::{auth, tls};
use crate::identity::sources::check_sockets;
use crate::identity::watch::{resync_once, spawn_watchers};
use crate::identity::MetadataStore;
use crate::model::metadata::KubernetesNames;
use crate::model::CgroupStats;
use crate::sampler::filter::CgroupFilter;
use crate::sampler::{Sampler, SamplerConfig};
use crate::scan::{now_unix_ms, Roots, Scanner};
use anyhow::{anyhow, bail, Context};
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// Where samples come from.
enum Source {
    Local(Box<Sampler>, bool),
    /// The server, `--all`, and the system CPU counter of the last sample fetched, which
    /// tells a new server sample from the one already seen.
    Server(Client, bool, Option<u64>),
}

impl Source {
    fn sample(&mut self) -> anyhow::Result<TopSample> {
        match self {
            Source::Local(sampler, all) => {
                Ok(top::sample_of(&sampler.sample_once(now_unix_ms()), *all))
            }
            Source::Server(client, all, last) => {
                // The server publishes one sample per its own interval: fetching again
                // before its next one gives zero deltas (every CPU % 0.00). Wait a little
                // for a fresh sample (a server sampling much slower is shown as it is).
                let deadline = Instant::now() + Duration::from_secs(2);
                loop {
                    let sample = fetch(client, *all)?;
                    let fresh = sample.system_cpu_ns.is_none() || sample.system_cpu_ns != *last;
                    if fresh || Instant::now() >= deadline {
                        *last = sample.system_cpu_ns;
                        return Ok(sample);
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
        }
    }
}

pub fn run(roots: &Roots, runtimes: &RuntimeArgs, args: &TopArgs) -> anyhow::Result<()> {
    // Sweeps keep one directory per cgroup and hierarchy open.
    crate::files::raise_open_file_limit();
    if args.interval.is_zero() {
        bail!("--interval must be greater than zero");
    }
    let mut source = match &args.server {
        Some(url) => {
            let client = Client::new(url.trim_end_matches('/'), args)?;
            // Fail early and clearly when the server is not there.
            fetch(&client, args.all)?;
            Source::Server(client, args.all, None)
        }
        None => Source::Local(Box::new(local_sampler(roots, runtimes, args)?), args.all),
    };
    let mut prev = source.sample()?;
    check_filters(&prev, &args.containers)?;
    if args.no_stream || !std::io::stdout().is_terminal() {
        return plain(&mut source, &mut prev, args);
    }
    interactive(&mut source, prev, args)
}

fn local_sampler(roots: &Roots, runtimes: &RuntimeArgs, args: &TopArgs) -> anyhow::Result<Sampler> {
    // The reader's error names the root, the OS reason and the fix: one context, as every
    // command gives it.
    let scanner = Scanner::open(roots).context("cannot start the cgroup reader")?;
    let store = MetadataStore::new();
    let sockets = runtimes.to_sockets();
    check_sockets(&sockets)?;
    // Metadata: one resync now, then watchers on a background thread for new containers.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    // A busy node's dockerd can take seconds to list and inspect: without the names,
    // `top NAME` would say there is no such container.
    rt.block_on(resync_once(&sockets, &store, Duration::from_secs(10)));
    spawn_watchers(rt.handle(), &sockets, &store, Duration::from_secs(60));
    // The runtime lives as long as the process; `top` exits by leaving `run`.
    std::mem::forget(rt);
    Ok(Sampler::new(
        scanner,
        store,
        SamplerConfig {
            interval: args.interval,
            history: Duration::from_secs(1),
            history_points: 1,
            filter: CgroupFilter::default(),
        },
    ))
}

fn matches_filter(e: &TopEntry, filters: &[String]) -> bool {
    filters.is_empty()
        || filters.iter().any(|f| {
            e.name == *f
                || e.id == *f
                || (!e.id.is_empty() && f.len() >= 3 && e.id.starts_with(f.as_str()))
        })
}

fn check_filters(sample: &TopSample, filters: &[String]) -> anyhow::Result<()> {
    for f in filters {
        if !sample
            .entries
            .iter()
            .any(|e| matches_filter(e, std::slice::from_ref(f)))
        {
            bail!("no such container: {f}");
        }
    }
    Ok(())
}

fn filtered_rows(prev: &TopSample, cur: &TopSample, filters: &[String]) -> Vec<TopRow> {
    let mut rows: Vec<TopRow> = top::rows(Some(prev), cur)
        .into_iter()
        .filter(|r| matches_filter(&r.entry, filters))
        .collect();
    rows.sort_by(|a, b| a.entry.name.cmp(&b.entry.name));
    rows
}

/// `--no-stream` and non-terminal output: plain text, no escape codes.
fn plain(source: &mut Source, prev: &mut TopSample, args: &TopArgs) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    loop {
        std::thread::sleep(args.interval);
        let cur = source.sample()?;
        let rows = filtered_rows(prev, &cur, &args.containers);
        let lines = match args.format {
            TopFormat::Table => top::table(&rows, args.no_trunc),
            // docker's `Container` is the name or id as asked on the command line.
            TopFormat::Json => top::json_lines_with(&rows, args.no_trunc, |e| {
                args.containers
                    .iter()
                    .find(|f| matches_filter(e, std::slice::from_ref(*f)))
                    .cloned()
            }),
        };
        let mut text = lines.join("\n");
        text.push('\n');
        if !args.no_stream && args.format == TopFormat::Table {
            text.push('\n');
        }
        match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(()),
            other => other.context("cannot write to stdout")?,
        }
        if args.no_stream {
            return Ok(());
        }
        *prev = cur;
    }
}

/// A `cgscope serve` to read: its URL, an agent holding the TLS settings of the flags, and
/// the bearer token to send.
struct Client {
    url: String,
    agent: ureq::Agent,
    token: Option<String>,
}

impl Client {
    /// Reads the credential files of the flags (any problem is an error now, not at the
    /// first request).
    fn new(url: &str, args: &TopArgs) -> anyhow::Result<Client> {
        let https = if url.starts_with("https://") {
            true
        } else if url.starts_with("http://") {
            false
        } else {
            bail!("--server {url}: give an http:// or https:// URL");
        };
        let tls = if https {
            let Some(ca) = &args.ca else {
                bail!(
                    "--server {url} is https: --ca FILE must name the CA that signed its certificate"
                );
            };
            let roots: Vec<ureq::tls::Certificate<'static>> = tls::read_certs("--ca", ca)?
                .iter()
                .map(|c| ureq::tls::Certificate::from_der(c).to_owned())
                .collect();
            let client_cert = match (&args.cert, &args.key) {
                (Some(cert), Some(key)) => Some(client_cert(cert, key)?),
                _ => None,
            };
            ureq::tls::TlsConfig::builder()
                .provider(ureq::tls::TlsProvider::Rustls)
                .unversioned_rustls_crypto_provider(tls::provider())
                .root_certs(ureq::tls::RootCerts::new_with_certs(&roots))
                .client_cert(client_cert)
                .build()
        } else {
            if args.ca.is_some() || args.cert.is_some() {
                bail!("--ca, --cert and --key apply to an https:// --server only, not {url}");
            }
            ureq::tls::TlsConfig::default()
        };
        let token = args
            .token_file
            .as_deref()
            .map(|path| auth::load_client_token("--token-file", path))
            .transpose()?;
        let agent = ureq::Agent::config_builder()
            .tls_config(tls)
            // Error answers carry the server's reason (`{"error": ...}`), shown to the user.
            .http_status_as_error(false)
            .build()
            .new_agent();
        Ok(Client {
            url: url.to_owned(),
            agent,
            token,
        })
    }

    /// The body of a successful GET of `path`. A 401 says whether credentials are missing
    /// or were refused; any other error answer gives the server's reason.
    fn get(&self, path: &str) -> anyhow::Result<String> {
        let url = &self.url;
        let full = format!("{url}{path}");
        let mut request = self.agent.get(&full);
        if let Some(token) = &self.token {
            request = request.header("Authorization", format!("Bearer {token}"));
        }
        let mut response = request.call().with_context(|| {
            format!("cannot reach cgscope server at {url} (is `cgscope serve` running there?)")
        })?;
        let status = response.status().as_u16();
        let body = response
            .body_mut()
            .with_config()
            .limit(256 << 20)
            .read_to_string()
            .with_context(|| format!("cannot read the answer of {full}"))?;
        match status {
            200..=299 => Ok(body),
            401 if self.token.is_some() => Err(anyhow!(
                "{url} refused the credentials given (401): check --token-file, or --cert and --key"
            )),
            401 => Err(anyhow!(
                "{url} needs credentials (401): pass --token-file FILE, or --cert and --key"
            )),
            _ => {
                #[derive(serde::Deserialize)]
                struct Reason {
                    error: String,
                }
                let reason = serde_json::from_str::<Reason>(&body)
                    .map(|r| r.error)
                    .unwrap_or(body);
                Err(anyhow!("{full} answered {status}: {reason}"))
            }
        }
    }
}

/// The client certificate of `--cert` and `--key`, as ureq takes it.
fn client_cert(
    cert: &std::path::Path,
    key: &std::path::Path,
) -> anyhow::Result<ureq::tls::ClientCert> {
    let chain: Vec<ureq::tls::Certificate<'static>> = tls::read_certs("--cert", cert)?
        .iter()
        .map(|c| ureq::tls::Certificate::from_der(c).to_owned())
        .collect();
    // ureq takes a key as PEM only (it does not export its key kinds): the file's text, once
    // security found a key in it.
    let pem = tls::read_key_pem("--key", key)?;
    let key = ureq::tls::PrivateKey::from_pem(&pem)
        .with_context(|| format!("--key {}", key.display()))?;
    Ok(ureq::tls::ClientCert::new_with_certs(&chain, key))
}

/// GETs the API and turns it into a sample (`/api/v1/containers`, or `/cgroups` with --all).
fn fetch(client: &Client, all: bool) -> anyhow::Result<TopSample> {
    let get = |path: &str| client.get(path);
    #[derive(serde::Deserialize)]
    struct Machine {
        logical_cores: Option<u32>,
        memory_total_bytes: Option<u64>,
        system_cpu_usage_ns: Option<u64>,
        sampled_at_unix_ms: Option<u64>,
    }
    #[derive(serde::Deserialize)]
    struct Item {
        cgroup: String,
        kind: String,
        id: Option<String>,
        display_name: String,
        kubernetes: Option<KubernetesNames>,
        stats: CgroupStats,
    }
    let get_machine = || -> anyhow::Result<Machine> {
        serde_json::from_str(&get("/api/v1/machine")?).context("unexpected /api/v1/machine answer")
    };
    // The machine's counters and the list come in two requests, which can straddle one of
    // the server's samples: system CPU from one sample and container CPU from the next skews
    // every CPU % (to 0 % or far above). Read the machine again after the list, until both
    // answers belong to the same sample.
    let mut machine = get_machine()?;
    let mut tries = 0;
    let items: Vec<Item> = loop {
        let items = serde_json::from_str(&get(if all {
            "/api/v1/cgroups"
        } else {
            "/api/v1/containers"
        })?)
        .context("unexpected container list answer")?;
        let after = get_machine()?;
        let same = after.sampled_at_unix_ms == machine.sampled_at_unix_ms
            && after.system_cpu_usage_ns == machine.system_cpu_usage_ns;
        machine = after;
        tries += 1;
        if same || tries >= 5 {
            break items;
        }
    };
    let entries = items
        .into_iter()
        .filter(|i| {
            all || (i.kind == "container" && !i.kubernetes.as_ref().is_some_and(|k| k.sandbox))
        })
        .map(|i| {
            let id = i.id.unwrap_or_default();
            top::entry_of(i.cgroup, id, i.display_name, &i.stats)
        })
        .collect();
    Ok(TopSample {
        system_cpu_ns: machine.system_cpu_usage_ns,
        online_cpus: machine.logical_cores,
        memory_total_bytes: machine.memory_total_bytes,
        entries,
    })
}

/// Sort orders of the interactive view, one key each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SortBy {
    Name,
    Cpu,
    Memory,
    Net,
    Block,
    Pids,
}

fn sort_rows(rows: &mut [TopRow], by: SortBy, descending: bool) {
    let key = |r: &TopRow| -> f64 {
        let e = &r.entry;
        match by {
            SortBy::Name => 0.0,
            SortBy::Cpu => r.cpu_percent,
            SortBy::Memory => e.memory_bytes.unwrap_or(0) as f64,
            SortBy::Net => (e.net_rx_bytes + e.net_tx_bytes) as f64,
            SortBy::Block => (e.block_read_bytes + e.block_write_bytes) as f64,
            SortBy::Pids => e.pids.unwrap_or(0) as f64,
        }
    };
    rows.sort_by(|a, b| {
        let ord = if by == SortBy::Name {
            a.entry.name.cmp(&b.entry.name)
        } else {
            key(a)
                .total_cmp(&key(b))
                .then_with(|| b.entry.name.cmp(&a.entry.name))
        };
        if descending {
            ord.reverse()
        } else {
            ord
        }
    });
}

/// Restores the terminal when dropped: on return, on error, and on panic unwinding.
struct TerminalGuard;

impl TerminalGuard {
    fn enter() -> anyhow::Result<Self> {
        crossterm::terminal::enable_raw_mode().context("cannot switch the terminal to raw mode")?;
        let guard = TerminalGuard;
        crossterm::execute!(
            std::io::stdout(),
            crossterm::terminal::EnterAlternateScreen,
            crossterm::cursor::Hide
        )
        .context("cannot enter the alternate screen")?;
        Ok(guard)
    }
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        let _ = crossterm::execute!(
            std::io::stdout(),
            crossterm::cursor::Show,
            crossterm::terminal::LeaveAlternateScreen
        );
        let _ = crossterm::terminal::disable_raw_mode();
    }
}

struct View {
    sort: SortBy,
    descending: bool,
    filter: String,
    editing_filter: bool,
}

fn draw(rows: &[TopRow], view: &View, args: &TopArgs) -> anyhow::Result<()> {
    use crossterm::{cursor, queue, style, terminal};
    let (width, height) = terminal::size().unwrap_or((80, 24));
    let (width, height) = (usize::from(width), usize::from(height));
    let mut out = std::io::stdout().lock();
    queue!(
        out,
        cursor::MoveTo(0, 0),
        terminal::Clear(terminal::ClearType::All)
    )?;
    let sort_name = format!("{:?}", view.sort).to_lowercase();
    let status = if view.editing_filter {
        format!("filter: {}_   (Enter apply, Esc clear)", view.filter)
    } else {
        format!(
            "sort {sort_name}{}  keys: c cpu  m mem  n name  i net  b block  p pids  / filter  q quit{}",
            if view.descending { " desc" } else { "" },
            if view.filter.is_empty() { String::new() } else { format!("   filter: {}", view.filter) }
        )
    };
    let lines = top::table(rows, args.no_trunc);
    for (n, line) in std::iter::once(status.as_str())
        .chain(lines.iter().map(String::as_str))
        .take(height.saturating_sub(1).max(1))
        .enumerate()
    {
        let clipped: String = line.chars().take(width).collect();
        queue!(out, cursor::MoveTo(0, u16::try_from(n).unwrap_or(u16::MAX)))?;
        if n == 1 {
            queue!(
                out,
                style::SetAttribute(style::Attribute::Bold),
                style::Print(clipped),
                style::SetAttribute(style::Attribute::Reset)
            )?;
        } else {
            queue!(out, style::Print(clipped))?;
        }
    }
    out.flush()?;
    Ok(())
}

fn interactive(source: &mut Source, mut prev: TopSample, args: &TopArgs) -> anyhow::Result<()> {
    use crossterm::event::{self, Event, KeyCode, KeyEventKind, KeyModifiers};
    let _guard = TerminalGuard::enter()?;
    let mut view = View {
        sort: SortBy::Cpu,
        descending: true,
        filter: String::new(),
        editing_filter: false,
    };
    let mut rows: Vec<TopRow> = Vec::new();
    let mut next_sample = Instant::now() + args.interval;
    let redraw = |rows: &[TopRow], view: &View| -> anyhow::Result<()> {
        let mut shown: Vec<TopRow> = rows
            .iter()
            .filter(|r| {
                view.filter.is_empty()
                    || r.entry.name.contains(&view.filter)
                    || r.entry.id.starts_with(&view.filter)
            })
            .cloned()
            .collect();
        sort_rows(&mut shown, view.sort, view.descending);
        draw(&shown, view, args)
    };
    redraw(&rows, &view)?;
    loop {
        let wait = next_sample.saturating_duration_since(Instant::now());
        if event::poll(wait)? {
            match event::read()? {
                Event::Key(k) if k.kind != KeyEventKind::Release => {
                    if view.editing_filter {
                        match k.code {
                            KeyCode::Enter => view.editing_filter = false,
                            KeyCode::Esc => {
                                view.filter.clear();
                                view.editing_filter = false;
                            }
                            KeyCode::Backspace => {
                                view.filter.pop();
                            }
                            KeyCode::Char(c) => view.filter.push(c),
                            _ => {}
                        }
                    } else {
                        let pick = |s: SortBy, v: &mut View| {
                            v.descending = if v.sort == s {
                                !v.descending
                            } else {
                                s != SortBy::Name
                            };
                            v.sort = s;
                        };
                        match (k.code, k.modifiers) {
                            (KeyCode::Char('c'), KeyModifiers::CONTROL)
                            | (KeyCode::Char('q'), _)
                            | (KeyCode::Esc, _) => return Ok(()),
                            (KeyCode::Char('c'), _) => pick(SortBy::Cpu, &mut view),
                            (KeyCode::Char('m'), _) => pick(SortBy::Memory, &mut view),
                            (KeyCode::Char('n'), _) => pick(SortBy::Name, &mut view),
                            (KeyCode::Char('i'), _) => pick(SortBy::Net, &mut view),
                            (KeyCode::Char('b'), _) => pick(SortBy::Block, &mut view),
                            (KeyCode::Char('p'), _) => pick(SortBy::Pids, &mut view),
                            (KeyCode::Char('/'), _) => view.editing_filter = true,
                            _ => {}
                        }
                    }
                    redraw(&rows, &view)?;
                }
                Event::Resize(_, _) => redraw(&rows, &view)?,
                _ => {}
            }
            continue;
        }
        let cur = source.sample()?;
        rows = filtered_rows(&prev, &cur, &args.containers);
        prev = cur;
        next_sample = Instant::now() + args.interval;
        redraw(&rows, &view)?;
    }
}
