//! The local AWS emulator: one moto server per test, on a free port.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A moto server, killed when dropped.
pub struct Moto {
    child: Child,
    pub endpoint: String,
}

impl Moto {
    /// Starts moto on a free port and returns once *this* moto is serving. Tests run in
    /// parallel, so a port found free can be taken by another test's moto before ours binds it;
    /// a probe of the port would then reach the other one (and fail when that test ends). moto
    /// says "Running on" only after its own bind succeeded and exits when the port is taken, so
    /// its stderr decides, and a taken port is retried with another.
    pub fn start() -> Moto {
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
                Ok(()) => {
                    return Moto {
                        child,
                        endpoint: format!("http://127.0.0.1:{port}"),
                    };
                }
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
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
