//! The book's streaming walkthrough as its step 7 runs it: the server binary in one
//! process, the client binary in another, certificates in `certs/` of their directory.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// What the client prints: the book's expected output, with the averages its handler
/// really computes (see the crate's documentation).
const EXPECTED: &str = "
--- Bidirectional chat ---
reply: ack: ping
reply: ack: status?

--- Server streaming ---
rolling avg: 21.50
rolling avg: 22.00
rolling avg: 22.50
rolling avg: 23.00
rolling avg: 23.50

--- Client streaming ---
server accepted 3 readings
";

/// The server process, killed when the test ends however it ends.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A directory of the test's own, removed when dropped.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The book's step 3: a self-signed certificate for `localhost` and its key.
fn write_certificates(dir: &Path) {
    let certs = dir.join("certs");
    std::fs::create_dir_all(&certs).unwrap();
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    std::fs::write(certs.join("server-cert.pem"), certified.cert.pem()).unwrap();
    std::fs::write(certs.join("server-key.pem"), certified.signing_key.serialize_pem()).unwrap();
}

#[test]
fn the_books_client_runs_all_three_demos_against_the_books_server() {
    let dir = TempDir(std::env::temp_dir().join(format!("rpcnet-walkthrough-{}", std::process::id())));
    write_certificates(&dir.0);

    let mut server = Server(
        Command::new(env!("CARGO_BIN_EXE_server"))
            .arg("127.0.0.1:0")
            .current_dir(&dir.0)
            .stdout(Stdio::piped())
            .spawn()
            .expect("starts the server"),
    );
    let mut line = String::new();
    BufReader::new(server.0.stdout.take().unwrap()).read_line(&mut line).expect("the server says where it listens");
    let addr = line.trim().strip_prefix("Telemetry server listening on ").expect("the book's line").to_owned();

    let client =
        Command::new(env!("CARGO_BIN_EXE_client")).arg(&addr).current_dir(&dir.0).output().expect("runs the client");
    let stdout = String::from_utf8_lossy(&client.stdout);
    assert!(client.status.success(), "the client failed: {}\nstdout:{stdout}", String::from_utf8_lossy(&client.stderr));
    assert_eq!(stdout, EXPECTED, "every demo prints what the book shows");
}
