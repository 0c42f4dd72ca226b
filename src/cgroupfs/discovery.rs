//! Keeps the set of cgroup directories current between sweeps without walking the trees each
//! time: one inotify watch per directory reports mkdir, rmdir and rename. The first listing is a
//! plain walk (one-shot commands stop there); the watches are set on the second; a queue overflow
//! or a failed watch falls back to walking. Knows directory names only (escaped when they are
//! not UTF-8), no cgroup files.

use super::walk::list_cgroups;
use crate::model::cgroup::{escape_name, unescape_name};
use crate::model::CgroupPath;
use rustix::fs::inotify::{self, CreateFlags, ReadFlags, WatchFlags};
use std::collections::{BTreeMap, HashMap};
use std::ffi::OsStr;
use std::mem::MaybeUninit;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Listings between two checks of the watched set against a plain walk. The kernel reports
/// lost events (queue overflow), so this only guards against the unforeseen, at the cost of one
/// walk a minute at the default interval.
const LISTINGS_PER_CHECK: u32 = 60;

/// The cgroup directories under a set of hierarchy roots (the v1 union, or the one v2 tree).
#[derive(Debug)]
pub struct Discovery {
    roots: Vec<PathBuf>,
    mode: Mode,
    listings: u32,
}

#[derive(Debug)]
enum Mode {
    /// Walk every time (first listing, or inotify unusable).
    Walk {
        warned: bool,
    },
    Watch(Watched),
}

#[derive(Debug)]
struct Watched {
    fd: OwnedFd,
    /// Relative directory path (escaped text, as listed) -> watch, per root.
    dirs: Vec<BTreeMap<String, i32>>,
    /// Watch -> (root index, relative path).
    by_wd: HashMap<i32, (usize, String)>,
    /// Relative path -> bit set of the roots it exists under.
    union: BTreeMap<String, u64>,
    buf: Vec<MaybeUninit<u8>>,
}

/// Why watching stopped; the caller falls back to walking.
#[derive(Debug)]
struct Unwatchable(rustix::io::Errno);

impl Discovery {
    pub fn new(roots: Vec<PathBuf>) -> Self {
        Discovery {
            roots,
            mode: Mode::Walk { warned: false },
            listings: 0,
        }
    }

    /// Every cgroup present now, sorted, root included.
    pub fn list(&mut self) -> Vec<CgroupPath> {
        self.listings += 1;
        let first = self.listings == 1;
        let check = self.listings % LISTINGS_PER_CHECK == 0;
        match &mut self.mode {
            Mode::Walk { warned } => {
                if first || *warned {
                    return self.walk();
                }
                match Watched::start(&self.roots) {
                    Ok(w) => {
                        let listed = w.list();
                        self.mode = Mode::Watch(w);
                        listed
                    }
                    Err(Unwatchable(errno)) => {
                        tracing::warn!(%errno, "cannot watch cgroup directories; walking them every sample instead");
                        self.mode = Mode::Walk { warned: true };
                        self.walk()
                    }
                }
            }
            Mode::Watch(w) => {
                let updated = w.drain(&self.roots);
                match updated {
                    Ok(()) if !check => w.list(),
                    Ok(()) => {
                        let listed = w.list();
                        let walked = self.walk();
                        if listed != walked {
                            tracing::debug!(
                                watched = listed.len(),
                                walked = walked.len(),
                                "watched cgroup set drifted; watching afresh"
                            );
                            self.restart();
                        }
                        walked
                    }
                    Err(Unwatchable(errno)) => {
                        tracing::debug!(%errno, "cgroup watch lost events; watching afresh");
                        self.restart();
                        self.walk()
                    }
                }
            }
        }
    }

    /// Whether changes are being followed through watches (else every listing walks).
    pub fn watching(&self) -> bool {
        matches!(self.mode, Mode::Watch(_))
    }

    fn walk(&self) -> Vec<CgroupPath> {
        let roots: Vec<&Path> = self.roots.iter().map(PathBuf::as_path).collect();
        list_cgroups(&roots).into_iter().collect()
    }

    /// Drops every watch and sets them again on the next listing.
    fn restart(&mut self) {
        self.mode = Mode::Walk { warned: false };
    }
}

impl Watched {
    fn start(roots: &[PathBuf]) -> Result<Self, Unwatchable> {
        let fd =
            inotify::init(CreateFlags::CLOEXEC | CreateFlags::NONBLOCK).map_err(Unwatchable)?;
        let mut w = Watched {
            fd,
            dirs: vec![BTreeMap::new(); roots.len()],
            by_wd: HashMap::new(),
            union: BTreeMap::new(),
            // Room for many events per read; each is 16 bytes plus a padded name.
            buf: vec![MaybeUninit::uninit(); 64 * 1024],
        };
        for (i, root) in roots.iter().enumerate() {
            if root.is_dir() {
                w.add_tree(roots, i, String::new())?;
            }
        }
        Ok(w)
    }

    fn list(&self) -> Vec<CgroupPath> {
        self.union
            .keys()
            .map(|rel| CgroupPath::from_relative(rel))
            .collect()
    }

    /// Watches `rel` under root `i` and everything below it. The watch is set before the
    /// directory is listed, so a child made meanwhile is either listed or reported.
    fn add_tree(&mut self, roots: &[PathBuf], i: usize, rel: String) -> Result<(), Unwatchable> {
        let mut stack = vec![rel];
        while let Some(rel) = stack.pop() {
            let dir = if rel.is_empty() {
                roots[i].clone()
            } else {
                roots[i].join(OsStr::from_bytes(&unescape_name(&rel)))
            };
            let flags = WatchFlags::CREATE
                | WatchFlags::DELETE
                | WatchFlags::MOVED_FROM
                | WatchFlags::MOVED_TO
                | WatchFlags::ONLYDIR
                | WatchFlags::DONT_FOLLOW;
            let wd = match inotify::add_watch(&self.fd, &dir, flags) {
                Ok(wd) => wd,
                // Removed before we got to it: nothing to list.
                Err(rustix::io::Errno::NOENT | rustix::io::Errno::NOTDIR) => continue,
                Err(errno) => return Err(Unwatchable(errno)),
            };
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            self.by_wd.insert(wd, (i, rel.clone()));
            *self.union.entry(rel.clone()).or_insert(0) |= 1 << i;
            self.dirs[i].insert(rel.clone(), wd);
            for entry in entries.flatten() {
                if !entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                    continue;
                }
                stack.push(join(&rel, &escape_name(entry.file_name().as_bytes())));
            }
        }
        Ok(())
    }

    /// Forgets `rel` under root `i` and everything below it.
    fn remove_tree(&mut self, i: usize, rel: &str) {
        let below = format!("{rel}/");
        let gone: Vec<String> = self.dirs[i]
            .range(rel.to_owned()..)
            .take_while(|(p, _)| p.as_str() == rel || p.starts_with(&below))
            .map(|(p, _)| p.clone())
            .collect();
        for path in gone {
            if let Some(wd) = self.dirs[i].remove(&path) {
                self.by_wd.remove(&wd);
                // Already gone with a deleted directory; needed for one moved away.
                let _ = inotify::remove_watch(&self.fd, wd);
            }
            if let Some(mask) = self.union.get_mut(&path) {
                *mask &= !(1 << i);
                if *mask == 0 {
                    self.union.remove(&path);
                }
            }
        }
    }

    /// Applies every queued event.
    fn drain(&mut self, roots: &[PathBuf]) -> Result<(), Unwatchable> {
        let mut changes = Vec::new();
        let mut buf = std::mem::take(&mut self.buf);
        let mut reader = inotify::Reader::new(&self.fd, &mut buf);
        let result = loop {
            match reader.next() {
                Ok(event) => {
                    let flags = event.events();
                    if flags.contains(ReadFlags::QUEUE_OVERFLOW) {
                        break Err(Unwatchable(rustix::io::Errno::OVERFLOW));
                    }
                    if flags.contains(ReadFlags::IGNORED) {
                        changes.push(Change::Unwatched(event.wd()));
                        continue;
                    }
                    if !flags.contains(ReadFlags::ISDIR) {
                        continue;
                    }
                    let Some(name) = event.file_name() else {
                        continue;
                    };
                    let name = escape_name(name.to_bytes());
                    let appeared = flags.intersects(ReadFlags::CREATE | ReadFlags::MOVED_TO);
                    let vanished = flags.intersects(ReadFlags::DELETE | ReadFlags::MOVED_FROM);
                    if appeared || vanished {
                        changes.push(Change::Dir {
                            wd: event.wd(),
                            name: name.into_owned(),
                            appeared,
                        });
                    }
                }
                Err(rustix::io::Errno::AGAIN) => break Ok(()),
                Err(rustix::io::Errno::INTR) => {}
                Err(errno) => break Err(Unwatchable(errno)),
            }
        };
        self.buf = buf;
        result?;
        for change in changes {
            match change {
                Change::Unwatched(wd) => {
                    if let Some((i, rel)) = self.by_wd.remove(&wd) {
                        // The directory itself went (its parent's event may have done this).
                        if self.dirs[i].get(&rel) == Some(&wd) {
                            self.remove_tree(i, &rel);
                        }
                    }
                }
                Change::Dir { wd, name, appeared } => {
                    let Some((i, parent)) = self.by_wd.get(&wd).cloned() else {
                        continue;
                    };
                    let rel = join(&parent, &name);
                    self.remove_tree(i, &rel);
                    if appeared {
                        self.add_tree(roots, i, rel)?;
                    }
                }
            }
        }
        Ok(())
    }
}

enum Change {
    Unwatched(i32),
    Dir {
        wd: i32,
        name: String,
        appeared: bool,
    },
}

fn join(parent: &str, name: &str) -> String {
    if parent.is_empty() {
        name.to_owned()
    } else {
        format!("{parent}/{name}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[CgroupPath]) -> Vec<String> {
        list.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn watched_set_follows_mkdir_rmdir_and_rename_like_a_walk() {
        let dir = tempfile::tempdir().unwrap();
        let cpu = dir.path().join("cpu");
        let mem = dir.path().join("memory");
        std::fs::create_dir_all(cpu.join("a/b")).unwrap();
        std::fs::create_dir_all(mem.join("a")).unwrap();
        let mut d = Discovery::new(vec![cpu.clone(), mem.clone()]);
        assert_eq!(names(&d.list()), ["/", "/a", "/a/b"]);
        // Second listing starts watching.
        assert_eq!(names(&d.list()), ["/", "/a", "/a/b"]);
        assert!(matches!(d.mode, Mode::Watch(_)));

        std::fs::create_dir_all(mem.join("new/deep/er")).unwrap();
        std::fs::create_dir_all(cpu.join("a/c")).unwrap();
        std::fs::write(cpu.join("a/file"), "not a cgroup").unwrap();
        assert_eq!(
            names(&d.list()),
            [
                "/",
                "/a",
                "/a/b",
                "/a/c",
                "/new",
                "/new/deep",
                "/new/deep/er"
            ]
        );
        // A cgroup in two trees stays until it is gone from both.
        std::fs::create_dir_all(cpu.join("new")).unwrap();
        std::fs::remove_dir_all(mem.join("new")).unwrap();
        assert_eq!(names(&d.list()), ["/", "/a", "/a/b", "/a/c", "/new"]);
        std::fs::rename(cpu.join("a"), cpu.join("z")).unwrap();
        std::fs::create_dir(cpu.join("z/b/c")).unwrap();
        let got = names(&d.list());
        assert_eq!(got, ["/", "/a", "/new", "/z", "/z/b", "/z/b/c", "/z/c"]);
        assert!(matches!(d.mode, Mode::Watch(_)));
        assert_eq!(names(&d.walk()), got, "watched set equals a fresh walk");
    }

    #[test]
    fn watched_names_that_are_not_utf8_are_listed_escaped_and_followed_below() {
        let dir = tempfile::tempdir().unwrap();
        let cpu = dir.path().join("cpu");
        std::fs::create_dir_all(&cpu).unwrap();
        let mut d = Discovery::new(vec![cpu.clone()]);
        d.list();
        d.list();
        assert!(matches!(d.mode, Mode::Watch(_)));
        let odd = cpu.join(OsStr::from_bytes(b"odd-\xff\xfe"));
        std::fs::create_dir(&odd).unwrap();
        assert_eq!(names(&d.list()), ["/", r"/odd-\xff\xfe"]);
        // The new directory is watched under its real name.
        std::fs::create_dir(odd.join("inner")).unwrap();
        assert_eq!(
            names(&d.list()),
            ["/", r"/odd-\xff\xfe", r"/odd-\xff\xfe/inner"]
        );
        std::fs::remove_dir_all(&odd).unwrap();
        assert_eq!(names(&d.list()), ["/"]);
        assert!(matches!(d.mode, Mode::Watch(_)));
    }

    #[test]
    fn missing_roots_list_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut d = Discovery::new(vec![dir.path().join("gone")]);
        assert!(d.list().is_empty());
        assert!(d.list().is_empty());
        std::fs::create_dir(dir.path().join("gone")).unwrap();
        // A root that appears later is found by the periodic check, not by a watch.
        for _ in 0..LISTINGS_PER_CHECK {
            d.list();
        }
        assert_eq!(names(&d.list()), ["/"]);
    }
}
