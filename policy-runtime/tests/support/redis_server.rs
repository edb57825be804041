//! A private `redis-server` for one test or benchmark: loopback only, on a
//! free port, with no persistence, stopped (by the PID of the child process)
//! when dropped.
#![allow(dead_code)]

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a fresh server may take to answer PING.
const STARTUP: Duration = Duration::from_secs(10);

/// A running `redis-server` child process.
pub struct RedisServer {
    port: u16,
    child: Option<Child>,
    /// The port speaks TLS only (`--port 0 --tls-port <port>`).
    tls: bool,
    /// Arguments after the defaults, such as the TLS certificates.
    extra: Vec<String>,
}

impl RedisServer {
    /// Starts a server on a free loopback port and waits until it answers PING.
    pub fn start() -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("no free loopback port")
            .port();
        let mut server = Self {
            port,
            child: None,
            tls: false,
            extra: Vec::new(),
        };
        server.restart();
        server
    }

    /// Starts a server on a free loopback port with `args` after the
    /// defaults (such as `--cluster-enabled yes`), and waits until it
    /// answers PING.
    pub fn start_with(args: &[String]) -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("no free loopback port")
            .port();
        let mut server = Self {
            port,
            child: None,
            tls: false,
            extra: args.to_vec(),
        };
        server.restart();
        server
    }

    /// Starts a server that speaks TLS only, on a free loopback port, with
    /// `tls_args` (its `--tls-cert-file`, `--tls-key-file`,
    /// `--tls-ca-cert-file`, `--tls-auth-clients`...), and waits until the
    /// port accepts connections. Panics, saying so, when this redis-server
    /// was built without TLS.
    pub fn start_tls(tls_args: &[String]) -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("no free loopback port")
            .port();
        let mut server = Self {
            port,
            child: None,
            tls: true,
            extra: tls_args.to_vec(),
        };
        server.restart();
        server
    }

    /// The port the server listens on (TLS only for [`RedisServer::start_tls`]).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// A blocking client connection, for setting up and inspecting keys.
    pub fn connection(&self) -> redis::Connection {
        redis::Client::open(self.url())
            .and_then(|client| client.get_connection_with_timeout(Duration::from_secs(2)))
            .expect("cannot connect to the test redis-server")
    }

    /// Kills the server (SIGKILL, as in a crash) and waits for it to exit.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Freezes the server (SIGSTOP): connections stay open but nothing is
    /// answered, as with a hung or overloaded server.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// Lets a paused server run again (SIGCONT).
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        let child = self.child.as_ref().expect("redis-server is not running");
        let status = Command::new("kill")
            .args([signal, &child.id().to_string()])
            .status()
            .expect("cannot run kill");
        assert!(status.success(), "kill {signal} failed");
    }

    /// Starts the server again on the same port, with no data, and waits
    /// until it answers PING.
    pub fn restart(&mut self) {
        self.kill();
        let port = self.port.to_string();
        let listen: &[&str] = if self.tls {
            &["--port", "0", "--tls-port", &port]
        } else {
            &["--port", &port]
        };
        let log = self.log_path();
        let output = || match &log {
            Some(path) => Stdio::from(std::fs::File::create(path).expect("cannot create the log")),
            None => Stdio::null(),
        };
        let child = Command::new("redis-server")
            .args(listen)
            .args(&self.extra)
            .args(["--bind", "127.0.0.1"])
            .args(["--save", ""])
            .args(["--appendonly", "no"])
            .args(["--dir", &std::env::temp_dir().to_string_lossy()])
            .stdin(Stdio::null())
            .stdout(output())
            .stderr(output())
            .spawn()
            .expect("cannot start redis-server; install it with `apt-get install redis-server`");
        self.child = Some(child);
        if self.tls {
            self.wait_for_tls_port();
        } else {
            self.wait_for_ping();
        }
    }

    /// Where a TLS server's output goes, to tell why it did not start.
    fn log_path(&self) -> Option<std::path::PathBuf> {
        self.tls.then(|| {
            std::env::temp_dir().join(format!(
                "policy-redis-tls-{}-{}.log",
                std::process::id(),
                self.port
            ))
        })
    }

    /// Waits until a TLS server's port accepts connections (a TLS PING
    /// needs the test's certificates; the tests' own requests make it).
    fn wait_for_tls_port(&mut self) {
        let deadline = Instant::now() + STARTUP;
        let address = std::net::SocketAddr::from(([127, 0, 0, 1], self.port));
        loop {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                let log = self
                    .log_path()
                    .and_then(|path| std::fs::read_to_string(path).ok())
                    .unwrap_or_default();
                let lacks_tls = log.contains("tls-port") || log.contains("TLS");
                panic!(
                    "redis-server exited at startup with {status}{}\n--- its output ---\n{log}",
                    if lacks_tls {
                        ": this redis-server does not take the TLS options, so it was built without TLS; \
                         install one built with TLS (`BUILD_TLS=yes`; Debian's and Ubuntu's `redis-server` \
                         package is) to run the Redis TLS tests"
                    } else {
                        ""
                    }
                );
            }
            if std::net::TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_ok() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "redis-server did not listen on its TLS port within {STARTUP:?}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn wait_for_ping(&mut self) {
        let deadline = Instant::now() + STARTUP;
        let client = redis::Client::open(self.url()).expect("bad test URL");
        loop {
            let answer = client
                .get_connection_with_timeout(Duration::from_millis(200))
                .and_then(|mut connection| redis::cmd("PING").query::<String>(&mut connection));
            if matches!(answer.as_deref(), Ok("PONG")) {
                return;
            }
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                panic!("redis-server exited at startup with {status}");
            }
            assert!(
                Instant::now() < deadline,
                "redis-server did not answer PING within {STARTUP:?}: {answer:?}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        if let Some(path) = self.log_path() {
            let _ = std::fs::remove_file(path);
        }
    }
}
