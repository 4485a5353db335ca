//! Fetches the four MNIST files from public mirrors, a URL or a local directory, and proves
//! each is the genuine file by the SHA-256 of its uncompressed bytes before it appears in
//! the target directory (download to a temporary file, verify, then rename).
//!
//! Used by `cargo xtask fetch-mnist` and by the runner when its default data directory is
//! empty, so both behave the same.

use std::fmt;
use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use flate2::read::MultiGzDecoder;
use gan_data::MnistFile;
use indicatif::{ProgressBar, ProgressStyle};
use sha2::{Digest, Sha256};

/// Mirrors that current frameworks use (the original site refuses downloads), tried in order.
pub const DEFAULT_MIRRORS: &[&str] = &[
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
];

/// Environment variable that replaces the default mirrors with one source (URL or directory).
pub const MIRROR_ENV: &str = "MNIST_MIRROR";

/// SHA-256 of the official uncompressed file: the only thing that makes a copy genuine.
pub fn official_sha256(file: MnistFile) -> &'static str {
    match file {
        MnistFile::TrainImages => {
            "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db"
        }
        MnistFile::TrainLabels => {
            "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5"
        }
        MnistFile::TestImages => "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
        MnistFile::TestLabels => "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
    }
}

/// The SHA-256 each file must have: the official ones, or others for tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checksums {
    sha256: [String; 4],
}

impl Checksums {
    pub fn official() -> Checksums {
        Checksums {
            sha256: MnistFile::ALL.map(|f| official_sha256(f).to_string()),
        }
    }

    /// Checksums for a file set other than MNIST's (tests use small generated files).
    pub fn custom(sha256: impl Fn(MnistFile) -> String) -> Checksums {
        Checksums {
            sha256: MnistFile::ALL.map(sha256),
        }
    }

    pub fn get(&self, file: MnistFile) -> &str {
        let i = MnistFile::ALL
            .iter()
            .position(|&f| f == file)
            .expect("one of the four");
        &self.sha256[i]
    }
}

/// Where MNIST comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A base URL; `<base>/<name>.gz` is fetched.
    Url(String),
    /// A directory holding `<name>.gz` or `<name>`.
    Dir(PathBuf),
}

impl Source {
    /// `http://` or `https://` URLs, `file://` URLs and plain paths.
    pub fn parse(s: &str) -> Source {
        if s.starts_with("http://") || s.starts_with("https://") {
            let base = if s.ends_with('/') {
                s.to_string()
            } else {
                format!("{s}/")
            };
            Source::Url(base)
        } else if let Some(path) = s.strip_prefix("file://") {
            Source::Dir(PathBuf::from(path))
        } else {
            Source::Dir(PathBuf::from(s))
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Url(u) => f.write_str(u),
            Source::Dir(d) => write!(f, "{}", d.display()),
        }
    }
}

/// The sources to try when the user named none: `$MNIST_MIRROR` if set, else the mirrors.
pub fn default_sources() -> Vec<Source> {
    match std::env::var(MIRROR_ENV) {
        Ok(s) if !s.trim().is_empty() => vec![Source::parse(s.trim())],
        _ => DEFAULT_MIRRORS.iter().map(|m| Source::parse(m)).collect(),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("cannot use {}: {cause}", path.display())]
    Io { path: PathBuf, cause: io::Error },
    #[error(
        "{file} from {source_name} is not the genuine MNIST file: SHA-256 of its uncompressed bytes is {actual}, expected {expected}; nothing was written"
    )]
    ChecksumMismatch {
        file: &'static str,
        source_name: String,
        expected: String,
        actual: String,
    },
    #[error("could not fetch {file} from any source:\n{}", tried.iter().map(|t| format!("  {t}")).collect::<Vec<_>>().join("\n"))]
    AllSourcesFailed {
        file: &'static str,
        tried: Vec<String>,
    },
    #[error("no sources to fetch MNIST from")]
    NoSources,
}

/// What happened to one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    AlreadyVerified,
    Fetched { from: String, bytes_read: u64 },
}

#[derive(Debug, Clone)]
pub struct Report {
    pub dir: PathBuf,
    pub files: Vec<(MnistFile, Outcome)>,
    pub elapsed: Duration,
}

impl Report {
    pub fn fetched(&self) -> usize {
        self.files
            .iter()
            .filter(|(_, o)| matches!(o, Outcome::Fetched { .. }))
            .count()
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let fetched = self.fetched();
        if fetched == 0 {
            write!(
                f,
                "MNIST already present and verified in {}: nothing to do (--force fetches again)",
                self.dir.display()
            )
        } else {
            let mut sources: Vec<&str> = self
                .files
                .iter()
                .filter_map(|(_, o)| match o {
                    Outcome::Fetched { from, .. } => Some(from.as_str()),
                    Outcome::AlreadyVerified => None,
                })
                .collect();
            sources.dedup();
            write!(
                f,
                "MNIST ready in {}: {fetched} file(s) fetched from {} and verified, {} already present, {:.1} s",
                self.dir.display(),
                sources.join(", "),
                self.files.len() - fetched,
                self.elapsed.as_secs_f64()
            )
        }
    }
}

/// How to fetch.
#[derive(Debug, Clone)]
pub struct Options {
    pub dir: PathBuf,
    pub sources: Vec<Source>,
    /// Fetch again even when verified files are present.
    pub force: bool,
    /// Progress bars and per-source messages on stderr.
    pub verbose: bool,
    pub checksums: Checksums,
}

impl Options {
    /// Fetch the official files into `dir` from `sources`, quietly, without forcing.
    pub fn new(dir: impl Into<PathBuf>, sources: Vec<Source>) -> Options {
        Options {
            dir: dir.into(),
            sources,
            force: false,
            verbose: false,
            checksums: Checksums::official(),
        }
    }
}

/// Makes `opts.dir` hold the four verified, uncompressed MNIST files.
pub fn fetch_mnist(opts: &Options) -> Result<Report, FetchError> {
    let start = Instant::now();
    if opts.sources.is_empty() {
        return Err(FetchError::NoSources);
    }
    // Folders this call creates, deepest first, so a failed fetch leaves none of them behind.
    let created: Vec<PathBuf> = opts
        .dir
        .ancestors()
        .take_while(|p| !p.as_os_str().is_empty() && !p.exists())
        .map(PathBuf::from)
        .collect();
    fs::create_dir_all(&opts.dir).map_err(|cause| FetchError::Io {
        path: opts.dir.clone(),
        cause,
    })?;
    let result = fetch_all(opts, start);
    if result.is_err() {
        for dir in &created {
            // Only empty folders go; anything a user put there meanwhile stays.
            let _ = fs::remove_dir(dir);
        }
    }
    result
}

fn fetch_all(opts: &Options, start: Instant) -> Result<Report, FetchError> {
    let mut files = Vec::new();
    for file in MnistFile::ALL {
        let dest = opts.dir.join(file.name());
        if !opts.force && dest.is_file() {
            match verify_file(&dest, opts.checksums.get(file)) {
                Ok(()) => {
                    files.push((file, Outcome::AlreadyVerified));
                    continue;
                }
                Err(actual) => {
                    if opts.verbose {
                        eprintln!(
                            "{}: present but not genuine (SHA-256 {actual}), fetching it again",
                            dest.display()
                        );
                    }
                }
            }
        }
        let mut tried = Vec::new();
        let mut fetched = None;
        for source in &opts.sources {
            match fetch_one(source, file, opts) {
                Ok(bytes_read) => {
                    fetched = Some(Outcome::Fetched {
                        from: source.to_string(),
                        bytes_read,
                    });
                    break;
                }
                Err(e) => {
                    if opts.sources.len() == 1 {
                        return Err(e);
                    }
                    if opts.verbose && tried.len() + 1 < opts.sources.len() {
                        eprintln!(
                            "{}: {source} failed ({e}); trying the next source",
                            file.name()
                        );
                    }
                    tried.push(format!("{source}: {e}"));
                }
            }
        }
        match fetched {
            Some(outcome) => files.push((file, outcome)),
            None => {
                return Err(FetchError::AllSourcesFailed {
                    file: file.name(),
                    tried,
                })
            }
        }
    }
    Ok(Report {
        dir: opts.dir.clone(),
        files,
        elapsed: start.elapsed(),
    })
}

/// True when all four files are present in `dir` and genuine.
pub fn is_complete(dir: &Path) -> bool {
    MnistFile::ALL
        .iter()
        .all(|&f| verify_file(&dir.join(f.name()), official_sha256(f)).is_ok())
}

/// `Ok` if `path` hashes to `expected`; otherwise the hash it has (or why not).
fn verify_file(path: &Path, expected: &str) -> Result<(), String> {
    let mut f = File::open(path).map_err(|e| e.to_string())?;
    let mut hasher = Sha256::new();
    io::copy(&mut f, &mut hasher).map_err(|e| e.to_string())?;
    let actual = hex::encode(hasher.finalize());
    if actual == expected {
        Ok(())
    } else {
        Err(actual)
    }
}

/// Fetches one file from one source into `dir`; returns the number of bytes read from the source.
fn fetch_one(source: &Source, file: MnistFile, opts: &Options) -> Result<u64, FetchError> {
    let (reader, len, what): (Box<dyn Read>, Option<u64>, String) = match source {
        Source::Dir(d) => {
            let path = [d.join(format!("{}.gz", file.name())), d.join(file.name())]
                .into_iter()
                .find(|p| p.is_file())
                .ok_or_else(|| FetchError::Io {
                    path: d.join(format!("{}.gz", file.name())),
                    cause: io::Error::new(
                        io::ErrorKind::NotFound,
                        format!("neither {0}.gz nor {0} is in that directory", file.name()),
                    ),
                })?;
            let f = File::open(&path).map_err(|cause| FetchError::Io {
                path: path.clone(),
                cause,
            })?;
            let len = f.metadata().ok().map(|m| m.len());
            (Box::new(f), len, path.display().to_string())
        }
        Source::Url(base) => {
            let url = format!("{base}{}.gz", file.name());
            let agent = ureq::AgentBuilder::new()
                .timeout_connect(Duration::from_secs(15))
                .timeout_read(Duration::from_secs(60))
                .try_proxy_from_env(true)
                .build();
            let resp = agent.get(&url).call().map_err(|e| FetchError::Io {
                path: PathBuf::from(&url),
                cause: io::Error::other(e.to_string()),
            })?;
            let len = resp.header("Content-Length").and_then(|l| l.parse().ok());
            (resp.into_reader(), len, url)
        }
    };
    let bar = progress_bar(opts.verbose, len, file.name());
    let counted = CountingReader {
        inner: bar.wrap_read(reader),
        count: 0,
    };
    let expected = opts.checksums.get(file);
    let result = copy_verified(counted, file, expected, &opts.dir, &what, source);
    bar.finish_and_clear();
    result
}

/// Decompresses (if gzipped) into a temporary file beside the destination while hashing, and
/// renames it into place only when the hash is the official one.
fn copy_verified(
    reader: CountingReader<impl Read>,
    file: MnistFile,
    expected: &str,
    dir: &Path,
    what: &str,
    source: &Source,
) -> Result<u64, FetchError> {
    let dest = dir.join(file.name());
    let io_err = |path: &Path| {
        let path = path.to_path_buf();
        move |cause| FetchError::Io { path, cause }
    };
    let tmp = tempfile::Builder::new()
        .prefix(&format!(".{}.", file.name()))
        .suffix(".partial")
        .tempfile_in(dir)
        .map_err(io_err(dir))?;
    let mut buffered = BufReader::with_capacity(1 << 16, reader);
    let is_gzip = {
        use std::io::BufRead;
        buffered
            .fill_buf()
            .map_err(io_err(Path::new(what)))?
            .starts_with(&[0x1f, 0x8b])
    };
    let mut plain: Box<dyn Read> = if is_gzip {
        Box::new(MultiGzDecoder::new(&mut buffered))
    } else {
        Box::new(&mut buffered)
    };
    let mut out = HashingWriter {
        inner: BufWriter::with_capacity(1 << 16, tmp.as_file()),
        hasher: Sha256::new(),
    };
    io::copy(&mut plain, &mut out).map_err(io_err(Path::new(what)))?;
    drop(plain);
    out.inner.flush().map_err(io_err(tmp.path()))?;
    let actual = hex::encode(out.hasher.finalize_reset());
    drop(out);
    if actual != expected {
        // `tmp` is deleted when dropped: nothing unverified stays in `dir`.
        return Err(FetchError::ChecksumMismatch {
            file: file.name(),
            source_name: source.to_string(),
            expected: expected.to_string(),
            actual,
        });
    }
    #[cfg(unix)]
    {
        // Temporary files are private (0600); the data is public and should read like any file.
        use std::os::unix::fs::PermissionsExt;
        let perms = fs::Permissions::from_mode(0o644);
        tmp.as_file()
            .set_permissions(perms)
            .map_err(io_err(tmp.path()))?;
    }
    tmp.as_file().sync_all().map_err(io_err(tmp.path()))?;
    let bytes_read = buffered.into_inner().count;
    tmp.persist(&dest).map_err(|e| FetchError::Io {
        path: dest.clone(),
        cause: e.error,
    })?;
    Ok(bytes_read)
}

fn progress_bar(verbose: bool, len: Option<u64>, name: &str) -> ProgressBar {
    if !verbose {
        return ProgressBar::hidden();
    }
    let bar = match len {
        Some(n) => ProgressBar::new(n),
        None => ProgressBar::new_spinner(),
    };
    bar.set_style(
        ProgressStyle::with_template("{msg:24} [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.set_message(name.to_string());
    bar
}

struct CountingReader<R> {
    inner: R,
    count: u64,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count += n as u64;
        Ok(n)
    }
}

struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}
