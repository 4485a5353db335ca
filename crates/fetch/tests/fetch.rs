//! Fetching from local folders, `file://` URLs and a loopback HTTP server, all offline: the
//! "MNIST" here is four small generated files with their own checksums.

use std::io::Write;
use std::path::Path;
use std::thread;

use gan_data::MnistFile;
use gan_fetch::{fetch_mnist, Checksums, FetchError, Options, Outcome, Source};
use sha2::{Digest, Sha256};

fn content(file: MnistFile) -> Vec<u8> {
    format!("pretend {} bytes", file.name())
        .repeat(100)
        .into_bytes()
}

fn checksums() -> Checksums {
    Checksums::custom(|f| hex::encode(Sha256::digest(content(f))))
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

/// A mirror folder: gzipped files, or plain ones.
fn mirror(gzipped: bool) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for f in MnistFile::ALL {
        if gzipped {
            std::fs::write(
                dir.path().join(format!("{}.gz", f.name())),
                gzip(&content(f)),
            )
            .unwrap();
        } else {
            std::fs::write(dir.path().join(f.name()), content(f)).unwrap();
        }
    }
    dir
}

fn options(dest: &Path, sources: Vec<Source>) -> Options {
    Options {
        checksums: checksums(),
        ..Options::new(dest, sources)
    }
}

fn assert_complete(dest: &Path) {
    let mut names: Vec<String> = std::fs::read_dir(dest)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    let mut expected: Vec<String> = MnistFile::ALL
        .iter()
        .map(|f| f.name().to_string())
        .collect();
    expected.sort();
    assert_eq!(
        names, expected,
        "exactly the four uncompressed files, no leftovers"
    );
    for f in MnistFile::ALL {
        assert_eq!(std::fs::read(dest.join(f.name())).unwrap(), content(f));
    }
}

#[test]
fn fetches_from_a_local_folder_gzipped_or_plain_and_then_does_nothing() {
    for gzipped in [true, false] {
        let src = mirror(gzipped);
        let dest = tempfile::tempdir().unwrap();
        let target = dest.path().join("mnist");
        let opts = options(&target, vec![Source::Dir(src.path().into())]);
        let report = fetch_mnist(&opts).unwrap();
        assert_eq!(report.fetched(), 4);
        assert_complete(&target);

        let again = fetch_mnist(&opts).unwrap();
        assert_eq!(again.fetched(), 0);
        assert!(again.to_string().contains("nothing to do"), "{again}");

        let forced = fetch_mnist(&Options {
            force: true,
            ..opts
        })
        .unwrap();
        assert_eq!(forced.fetched(), 4);
        assert_complete(&target);
    }
}

#[test]
fn file_urls_and_paths_parse_as_folders() {
    assert_eq!(Source::parse("file:///x/y"), Source::Dir("/x/y".into()));
    assert_eq!(
        Source::parse("../shared/mnist"),
        Source::Dir("../shared/mnist".into())
    );
    assert_eq!(
        Source::parse("https://example.org/mnist"),
        Source::Url("https://example.org/mnist/".into())
    );
    let src = mirror(true);
    let dest = tempfile::tempdir().unwrap();
    let url = format!("file://{}", src.path().display());
    fetch_mnist(&options(dest.path(), vec![Source::parse(&url)])).unwrap();
    assert_complete(dest.path());
}

#[test]
fn a_corrupted_copy_is_rejected_and_nothing_is_left_behind() {
    let src = mirror(true);
    let bad = MnistFile::TestImages;
    let mut corrupted = content(bad);
    corrupted[10] ^= 1;
    std::fs::write(
        src.path().join(format!("{}.gz", bad.name())),
        gzip(&corrupted),
    )
    .unwrap();
    let dest = tempfile::tempdir().unwrap();
    let err = fetch_mnist(&options(dest.path(), vec![Source::Dir(src.path().into())])).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, FetchError::ChecksumMismatch { .. }), "{msg}");
    assert!(
        msg.contains("t10k-images-idx3-ubyte"),
        "names the file: {msg}"
    );
    assert!(
        msg.contains(checksums().get(bad)),
        "names the expected hash: {msg}"
    );
    assert!(
        msg.contains(&hex::encode(Sha256::digest(&corrupted))),
        "names the actual hash: {msg}"
    );
    assert!(
        msg.contains(&src.path().display().to_string()),
        "names the source: {msg}"
    );
    let left: Vec<_> = std::fs::read_dir(dest.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(
        !left
            .iter()
            .any(|n| n.to_string_lossy().starts_with(".t10k-images")),
        "{left:?}"
    );
    assert!(!dest.path().join(bad.name()).exists());
}

#[test]
fn a_tampered_file_already_in_place_is_replaced() {
    let src = mirror(true);
    let dest = tempfile::tempdir().unwrap();
    let opts = options(dest.path(), vec![Source::Dir(src.path().into())]);
    fetch_mnist(&opts).unwrap();
    std::fs::write(dest.path().join(MnistFile::TrainLabels.name()), b"tampered").unwrap();
    let report = fetch_mnist(&opts).unwrap();
    assert_eq!(report.fetched(), 1);
    assert_complete(dest.path());
}

#[test]
fn a_missing_folder_is_a_clear_error_and_leaves_no_folders() {
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("data/mnist");
    let err = fetch_mnist(&options(&dest, vec![Source::Dir("/no/such/mirror".into())]))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("/no/such/mirror") && err.contains("train-images-idx3-ubyte"),
        "{err}"
    );
    assert!(
        !tmp.path().join("data").exists(),
        "the folders it made are gone again"
    );
}

/// Serves the mirror folder over HTTP on loopback for `requests` requests.
fn serve(dir: &Path, requests: usize) -> (String, thread::JoinHandle<()>) {
    let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
    let base = format!("http://{}/mnist", server.server_addr().to_ip().unwrap());
    let dir = dir.to_path_buf();
    let handle = thread::spawn(move || {
        for request in server.incoming_requests().take(requests) {
            let name = request.url().trim_start_matches("/mnist/").to_string();
            match std::fs::read(dir.join(&name)) {
                Ok(bytes) => request
                    .respond(tiny_http::Response::from_data(bytes))
                    .unwrap(),
                Err(_) => request.respond(tiny_http::Response::empty(404)).unwrap(),
            }
        }
    });
    (base, handle)
}

#[test]
fn fetches_over_http_and_falls_back_past_a_dead_mirror() {
    let src = mirror(true);
    let (base, server) = serve(src.path(), 4);
    let dest = tempfile::tempdir().unwrap();
    // Port 9 on loopback (discard) is closed here: the first mirror is unreachable.
    let dead = Source::Url("http://127.0.0.1:9/mnist/".into());
    let report = fetch_mnist(&options(dest.path(), vec![dead, Source::parse(&base)])).unwrap();
    server.join().unwrap();
    assert_eq!(report.fetched(), 4);
    assert!(report
        .files
        .iter()
        .all(|(_, o)| matches!(o, Outcome::Fetched { from, .. } if from.starts_with(&base))));
    assert_complete(dest.path());
}

#[test]
fn all_mirrors_failing_gives_one_line_per_mirror() {
    let dest = tempfile::tempdir().unwrap();
    let src = mirror(true);
    let (base, server) = serve(src.path(), 1);
    std::fs::remove_file(src.path().join("train-images-idx3-ubyte.gz")).unwrap();
    let sources = vec![Source::parse("http://127.0.0.1:9/a"), Source::parse(&base)];
    let err = fetch_mnist(&options(dest.path(), sources))
        .unwrap_err()
        .to_string();
    server.join().unwrap();
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 3, "{err}");
    assert!(lines[1].contains("127.0.0.1:9"), "{err}");
    assert!(lines[2].contains("404"), "{err}");
    assert!(
        std::fs::read_dir(dest.path()).unwrap().next().is_none(),
        "nothing left behind"
    );
}
