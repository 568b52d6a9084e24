//! The local AWS emulator. `scripts/test` starts one moto for the whole run and names it in
//! `DEPLOYER_TEST_MOTO`; every test then shares it, each in a corner of its own: four accounts and
//! an artifacts bucket that no other test uses (moto keeps stacks, queues and topics per account,
//! and bucket names are global). Without `DEPLOYER_TEST_MOTO` (a plain `cargo test`), each test
//! starts its own moto on a free port.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A moto server (killed when dropped if this test started it), and this test's corner of it.
pub struct Moto {
    child: Option<Child>,
    pub endpoint: String,
    /// The environments' accounts, in [`super::ENVIRONMENTS`] order: this test's alone.
    pub accounts: [(&'static str, String); 4],
    /// The artifacts bucket: this test's alone.
    pub bucket: String,
}

impl Moto {
    /// The run's moto (`DEPLOYER_TEST_MOTO`) or one of this test's own, with accounts and a
    /// bucket nobody else uses.
    pub fn start() -> Moto {
        let (child, endpoint) = match std::env::var("DEPLOYER_TEST_MOTO") {
            Ok(url) if !url.is_empty() => (None, url.trim_end_matches('/').to_owned()),
            _ => {
                let (child, endpoint) = Self::spawn();
                (Some(child), endpoint)
            }
        };
        let unique = unique();
        Moto {
            child,
            endpoint,
            accounts: std::array::from_fn(|i| {
                let env = super::ENVIRONMENTS[i];
                // Twelve digits, never starting with 0; the last says which environment.
                (
                    env,
                    format!("{}{i}", 10_000_000_000 + unique % 89_999_999_999),
                )
            }),
            bucket: format!("artifacts-{:012x}", unique % (1 << 48)),
        }
    }

    /// The account of `env` (DEV, STG, PRD or GBL) in this test's corner.
    pub fn account(&self, env: &str) -> &str {
        self.accounts
            .iter()
            .find(|(e, _)| *e == env)
            .map(|(_, a)| a.as_str())
            .unwrap_or_else(|| panic!("no environment {env}"))
    }

    /// Starts moto on a free port and returns once *this* moto is serving. Tests run in
    /// parallel, so a port found free can be taken by another test's moto before ours binds it;
    /// a probe of the port would then reach the other one (and fail when that test ends). moto
    /// says "Running on" only after its own bind succeeded and exits when the port is taken, so
    /// its stderr decides, and a taken port is retried with another.
    fn spawn() -> (Child, String) {
        let bin = std::env::var("MOTO_SERVER").unwrap_or_else(|_| "moto_server".to_owned());
        for _attempt in 0..10 {
            let port = free_port();
            let mut child = Command::new(&bin)
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {bin} (set MOTO_SERVER): {e}"));
            let stderr = child.stderr.take().expect("piped stderr");
            let (ready_tx, ready_rx) = std::sync::mpsc::channel();
            // Reads moto's log to the end: the readiness line first, then drains the request log
            // so that moto never blocks on a full pipe.
            std::thread::spawn(move || {
                let mut ready = Some(ready_tx);
                for line in BufReader::new(stderr).lines() {
                    let Ok(line) = line else { break };
                    if line.contains("Running on")
                        && let Some(tx) = ready.take()
                    {
                        let _ = tx.send(());
                    }
                }
            });
            match ready_rx.recv_timeout(Duration::from_secs(60)) {
                Ok(()) => return (child, format!("http://127.0.0.1:{port}")),
                // stderr closed without the line: moto exited, most likely because the port was
                // taken in the meantime. Try another.
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                    let _ = child.kill();
                    let _ = child.wait();
                }
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                    let _ = child.kill();
                    panic!("moto did not start on port {port} within 60 s");
                }
            }
        }
        panic!("moto could not start on any of 10 free ports");
    }
}

/// A number no other test of this run has: random per process (the run's test binaries share
/// the moto one after another), counted within it.
fn unique() -> u64 {
    use std::hash::BuildHasher;
    static RANDOM: std::sync::OnceLock<std::collections::hash_map::RandomState> =
        std::sync::OnceLock::new();
    static COUNT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    RANDOM
        .get_or_init(std::collections::hash_map::RandomState::new)
        .hash_one((std::process::id(), n))
}

/// A port that is free now, and not one this process handed out before.
fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
