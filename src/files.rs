//! Reads small kernel pseudo-files (cgroupfs, procfs) into one reused buffer, and can record
//! every file it reads into a fixture tree for `cgscope capture`. Knows no file formats.
//! Every read is bounded: non-blocking opens, regular files only, at most [`MAX_FILE_BYTES`].

use rustix::fs::{FileType, Mode, OFlags};
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

/// Reads whole files into a buffer that is reused across reads, so a steady-state sweep
/// makes no allocation per file. cgroupfs files report `st_size` 0, so we read to EOF
/// instead of trusting metadata, up to [`MAX_FILE_BYTES`].
#[derive(Debug)]
pub struct FileReader {
    buf: Vec<u8>,
    recorder: Option<Recorder>,
}

/// Where recorded reads go: each `(source root, destination dir)` pair maps a read under the
/// source root to the same relative path under the destination.
#[derive(Debug, Clone)]
pub struct Recorder {
    roots: Vec<(PathBuf, PathBuf)>,
    failures: u64,
}

impl Recorder {
    /// A recorder copying reads under each source root into its destination directory.
    pub fn new(roots: Vec<(PathBuf, PathBuf)>) -> Self {
        Recorder { roots, failures: 0 }
    }

    /// Files that could not be written into the capture tree.
    pub fn failures(&self) -> u64 {
        self.failures
    }

    fn destination(&self, path: &Path) -> Option<PathBuf> {
        self.roots.iter().find_map(|(src, dst)| {
            // A root that is a single file (the machine-id file) maps to `dst` itself.
            path.strip_prefix(src).ok().map(|rel| {
                if rel.as_os_str().is_empty() {
                    dst.clone()
                } else {
                    dst.join(rel)
                }
            })
        })
    }

    fn record_file(&mut self, path: &Path, content: &[u8]) {
        if let Some(dst) = self.destination(path) {
            let written = dst
                .parent()
                .map_or(Ok(()), std::fs::create_dir_all)
                .and_then(|()| std::fs::write(&dst, content));
            if let Err(err) = written {
                self.failures += 1;
                tracing::warn!(path = %dst.display(), %err, "capture: cannot write file");
            }
        }
    }

    fn record_link(&mut self, path: &Path, target: &Path) {
        if let Some(dst) = self.destination(path) {
            let written = dst
                .parent()
                .map_or(Ok(()), std::fs::create_dir_all)
                .and_then(|()| match std::fs::symlink_metadata(&dst) {
                    Ok(_) => Ok(()),
                    Err(_) => std::os::unix::fs::symlink(target, &dst),
                });
            if let Err(err) = written {
                self.failures += 1;
                tracing::warn!(path = %dst.display(), %err, "capture: cannot write link");
            }
        }
    }
}

impl Default for FileReader {
    fn default() -> Self {
        Self::new()
    }
}

impl FileReader {
    /// A reader with a 16 KiB starting buffer (big enough for every cgroup file but
    /// `memory.numa_stat`, which we do not read).
    pub fn new() -> Self {
        FileReader {
            buf: vec![0; INITIAL_BUFFER_BYTES],
            recorder: None,
        }
    }

    /// A reader that also copies every file it reads through `recorder`.
    pub fn recording(recorder: Recorder) -> Self {
        FileReader {
            recorder: Some(recorder),
            ..Self::new()
        }
    }

    /// The recorder, if this reader records.
    pub fn recorder(&self) -> Option<&Recorder> {
        self.recorder.as_ref()
    }

    /// Whether reads are being copied into a capture (which needs whole paths).
    pub fn is_recording(&self) -> bool {
        self.recorder.is_some()
    }

    /// Reads `path` to EOF. `Ok(None)` when the file does not exist (or its cgroup has just
    /// gone: ENODEV); any other failure is an error.
    pub fn read(&mut self, path: &Path) -> io::Result<Option<&[u8]>> {
        let file = match rustix::fs::open(path, OPEN_FLAGS, Mode::empty()) {
            Ok(fd) => File::from(fd),
            Err(errno) => {
                let err = io::Error::from(errno);
                return if is_absent(&err) { Ok(None) } else { Err(err) };
            }
        };
        let Some(len) = self.read_to_end(&file, |buf, _| (&file).read(buf))? else {
            return Ok(None);
        };
        let content = &self.buf[..len];
        if let Some(rec) = self.recorder.as_mut() {
            rec.record_file(path, content);
        }
        Ok(Some(content))
    }

    /// Reads `name` inside an open directory, like [`FileReader::read`]. The lookup walks one
    /// path component instead of the whole path, which on cgroupfs is most of an open's cost.
    /// Not recorded: a capturing caller reads by whole path.
    pub fn read_in(&mut self, dir: &Dir, name: &str) -> io::Result<Option<&[u8]>> {
        let Some(file) = Self::open_in(dir, name)? else {
            return Ok(None);
        };
        let file = File::from(file);
        Ok(self
            .read_to_end(&file, |buf, _| (&file).read(buf))?
            .map(|len| &self.buf[..len]))
    }

    /// Opens `name` inside an open directory for [`FileReader::read_kept`]; `Ok(None)` when it
    /// does not exist.
    pub fn open_in(dir: &Dir, name: &str) -> io::Result<Option<OwnedFd>> {
        match rustix::fs::openat(&dir.fd, name, OPEN_FLAGS, Mode::empty()) {
            Ok(fd) => Ok(Some(fd)),
            Err(errno) => {
                let err = io::Error::from(errno);
                if is_absent(&err) {
                    Ok(None)
                } else {
                    Err(err)
                }
            }
        }
    }

    /// Reads a file kept open from its start (`pread` at offset 0), like
    /// [`FileReader::read`]: a kernel seq_file prints itself afresh for a read at offset 0,
    /// so a kept file costs a read and no lookup, open or close. `Ok(None)` when its cgroup
    /// or process is gone. Not recorded: a capturing caller keeps no file open.
    pub fn read_kept(&mut self, fd: &OwnedFd) -> io::Result<Option<&[u8]>> {
        let fd = fd.as_fd();
        Ok(self
            .read_to_end(&fd, |buf, offset| {
                rustix::io::pread(fd, buf, offset as u64).map_err(io::Error::from)
            })?
            .map(|len| &self.buf[..len]))
    }

    /// Reads into the buffer through `read_at(buf, offset)`; the length read, or `None` when
    /// the file vanished meanwhile. A file longer than [`MAX_FILE_BYTES`] is an error, and so
    /// is anything but a regular file that reads as empty, long, or not at all
    /// ([`refuse_unless_regular`]).
    fn read_to_end(
        &mut self,
        file: &impl AsFd,
        mut read_at: impl FnMut(&mut [u8], usize) -> io::Result<usize>,
    ) -> io::Result<Option<usize>> {
        // `buf` stays fully initialised at its current length; only `filled` moves, so a
        // read costs no memset and no allocation once the buffer has grown to fit.
        let mut filled = 0;
        let mut checked = false;
        loop {
            if filled == self.buf.len() {
                if filled > MAX_FILE_BYTES {
                    // One byte past the cap was read: the file is too long. Give back what
                    // it made the buffer grow to, so one bad file does not pin 16 MiB.
                    self.buf.truncate(INITIAL_BUFFER_BYTES);
                    self.buf.shrink_to_fit();
                    return Err(io::Error::new(
                        io::ErrorKind::FileTooLarge,
                        format!("longer than {MAX_FILE_BYTES} bytes"),
                    ));
                }
                let grown = (self.buf.len() * 2).clamp(4096, MAX_FILE_BYTES + 1);
                self.buf.resize(grown, 0);
            }
            match read_at(&mut self.buf[filled..], filled) {
                Ok(0) => {
                    if filled == 0 {
                        refuse_unless_regular(file)?;
                    }
                    break;
                }
                Ok(n) => {
                    filled += n;
                    if filled < SHORT_READ_ENDS_FILE {
                        break;
                    }
                    if !checked {
                        refuse_unless_regular(file)?;
                        checked = true;
                    }
                }
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) if is_absent(&err) => return Ok(None),
                Err(err) => {
                    // EAGAIN: a FIFO or device with nothing to say (the open is O_NONBLOCK);
                    // ESPIPE: `pread` on one.
                    refuse_unless_regular(file)?;
                    return Err(err);
                }
            }
        }
        Ok(Some(filled))
    }

    /// Reads a symlink's target (`/proc/<pid>/ns/net`); `None` when absent.
    pub fn read_link(&mut self, path: &Path) -> io::Result<Option<PathBuf>> {
        match std::fs::read_link(path) {
            Ok(target) => {
                if let Some(rec) = self.recorder.as_mut() {
                    rec.record_link(path, &target);
                }
                Ok(Some(target))
            }
            Err(err) if is_absent(&err) => Ok(None),
            Err(err) => Err(err),
        }
    }
}

/// The longest file read: 16 MiB. The largest real ones are the root cgroup's `tasks` and
/// `cgroup.procs` (up to 8 bytes per thread, so 2 million threads fit) and a process's
/// `cmdline` (arguments are capped by the kernel at a quarter of the stack limit, 2 MiB by
/// default). Every other cgroup and proc file is under 16 KiB.
pub const MAX_FILE_BYTES: usize = 16 << 20;

const INITIAL_BUFFER_BYTES: usize = 16 * 1024;

/// `O_NONBLOCK`: a FIFO put in place of a cgroup file must not block the open (no writer)
/// nor the read; it is then refused as not a regular file.
const OPEN_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::CLOEXEC)
    .union(OFlags::NOCTTY)
    .union(OFlags::NONBLOCK);

/// cgroupfs, procfs and captured trees hold regular files only; a FIFO, socket or device in a
/// file's place is an error. Checked (one `fstat`) only when a read is empty, long or fails:
/// a check on every file made a sweep 15% slower (`cargo bench --bench sweep`), and a short first
/// read ends the file without it. What goes unchecked is harmless: a FIFO whose writer wrote
/// a few bytes gives them like a garbled file would, and can neither block (`O_NONBLOCK`) nor
/// go on (a short first read ends the file; a long one is checked).
fn refuse_unless_regular(file: &impl AsFd) -> io::Result<()> {
    let kind = FileType::from_raw_mode(rustix::fs::fstat(file)?.st_mode);
    if kind.is_file() {
        Ok(())
    } else {
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("not a regular file ({kind:?})"),
        ))
    }
}

/// A first read shorter than this ends the file, saving the read that would return 0 (a
/// third of the syscalls of a sweep). Sound for what we read: a regular file reads short only
/// at its end, and a kernel seq_file stops early only when its next record does not fit the
/// rest of a buffer of at least one 4 KiB page, and no record we read is near 2 KiB.
const SHORT_READ_ENDS_FILE: usize = 2048;

/// An open directory (`O_PATH`: no read access needed, and it pins no per-open kernel buffer)
/// whose files are read with [`FileReader::read_in`].
#[derive(Debug)]
pub struct Dir {
    fd: OwnedFd,
}

impl Dir {
    /// Opens `path`; `Ok(None)` when it does not exist.
    pub fn open(path: &Path) -> io::Result<Option<Dir>> {
        let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
        match rustix::fs::open(path, flags, Mode::empty()) {
            Ok(fd) => Ok(Some(Dir { fd })),
            Err(errno) => {
                let err = io::Error::from(errno);
                if is_absent(&err) {
                    Ok(None)
                } else {
                    Err(err)
                }
            }
        }
    }
}

/// Raises the soft limit on open files to the hard limit, for readers that keep one directory
/// open per cgroup. Returns the soft limit now in force.
pub fn raise_open_file_limit() -> Option<u64> {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current != limit.maximum {
        limit.current = limit.maximum;
        if let Err(err) = setrlimit(Resource::Nofile, limit) {
            tracing::debug!(%err, "cannot raise the open-file limit");
        }
    }
    getrlimit(Resource::Nofile).current
}

/// Absent files, and files of a cgroup or process that vanished while we read it.
pub fn is_absent(err: &io::Error) -> bool {
    matches!(err.kind(), io::ErrorKind::NotFound)
        || matches!(err.raw_os_error(), Some(code) if code == ENODEV || code == ESRCH)
}

// Linux errno values; std exposes no names for them and they are ABI-stable.
const ENODEV: i32 = 19;
const ESRCH: i32 = 3;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_file_is_none_and_content_is_read_to_eof() {
        let dir = tempfile::tempdir().unwrap();
        let mut reader = FileReader::new();
        assert!(reader.read(&dir.path().join("nope")).unwrap().is_none());
        let big = "x".repeat(100_000);
        std::fs::write(dir.path().join("big"), &big).unwrap();
        assert_eq!(
            reader.read(&dir.path().join("big")).unwrap().unwrap().len(),
            100_000
        );
    }

    #[test]
    fn devices_fifos_and_over_cap_files_are_errors_and_never_block() {
        let dir = tempfile::tempdir().unwrap();
        let mut reader = FileReader::new();
        let zero = dir.path().join("zero");
        std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
        let err = reader.read(&zero).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");

        // No writer: a blocking open would wait here forever.
        let fifo = dir.path().join("fifo");
        rustix::fs::mkfifoat(rustix::fs::CWD, &fifo, Mode::from_raw_mode(0o600)).unwrap();
        let err = reader.read(&fifo).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
        let d = Dir::open(dir.path()).unwrap().unwrap();
        assert!(reader.read_in(&d, "fifo").is_err());

        let long = dir.path().join("long");
        std::fs::write(&long, vec![b'1'; MAX_FILE_BYTES + 1]).unwrap();
        let err = reader.read(&long).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::FileTooLarge, "{err}");
        assert!(
            reader.buf.len() <= INITIAL_BUFFER_BYTES,
            "buffer given back"
        );
        std::fs::write(&long, vec![b'1'; MAX_FILE_BYTES]).unwrap();
        assert_eq!(reader.read(&long).unwrap().unwrap().len(), MAX_FILE_BYTES);
    }

    #[test]
    fn recorder_copies_reads_under_their_root() {
        let src = tempfile::tempdir().unwrap();
        let dst = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(src.path().join("a/b")).unwrap();
        std::fs::write(src.path().join("a/b/f"), "42\n").unwrap();
        let mut reader = FileReader::recording(Recorder::new(vec![(
            src.path().to_path_buf(),
            dst.path().join("cgroup"),
        )]));
        reader.read(&src.path().join("a/b/f")).unwrap();
        assert_eq!(
            std::fs::read_to_string(dst.path().join("cgroup/a/b/f")).unwrap(),
            "42\n"
        );
    }
}
