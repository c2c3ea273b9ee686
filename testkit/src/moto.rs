//! `moto_server`, an independent implementation of AWS APIs, for tests that check our
//! functions against more than our own endpoints.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `moto_server` on a free loopback port, stopped when dropped.
pub struct MotoServer {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
}

impl MotoServer {
    /// Starts `$MOTO_SERVER` (or `moto_server` on the PATH). Panics with the fix when it is
    /// missing: the README's test command installs it.
    pub fn start() -> Self {
        let program = std::env::var("MOTO_SERVER").unwrap_or_else(|_| "moto_server".into());
        Self::spawn(&program, |port| {
            let mut command = Command::new(&program);
            command.args(["-H", "127.0.0.1", "-p", &port.to_string()]);
            command
        })
    }

    /// Starts moto's server answering one request at a time. `moto_server` answers each
    /// request on its own thread with no lock around a conditional write, so two conditional
    /// writes racing on one item can both pass their check; DynamoDB serialises writes to an
    /// item. Race tests use this server, so the requests still arrive concurrently and each
    /// condition sees the write before it, as on DynamoDB.
    pub fn start_serialised() -> Self {
        let program = std::env::var("MOTO_SERVER").unwrap_or_else(|_| "moto_server".into());
        // moto_server's own interpreter (a console script's first line names it).
        let python = std::fs::read_to_string(&program)
            .ok()
            .and_then(|script| script.lines().next()?.strip_prefix("#!").map(str::to_owned))
            .unwrap_or_else(|| "python3".into());
        Self::spawn(&program, |port| {
            let mut command = Command::new(python.trim());
            command.args([
            "-c",
            "import sys\n\
             from werkzeug.serving import run_simple\n\
             from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app\n\
             run_simple('127.0.0.1', int(sys.argv[1]), DomainDispatcherApplication(create_backend_app), threaded=False)",
            &port.to_string(),
            ]);
            command
        })
    }

    /// Starts the server on a free port and waits until it answers HTTP. A port that was free
    /// when chosen can be taken by another test before moto binds it; then moto exits, and a
    /// bare TCP connect would reach the other listener. So the server counts as started only
    /// while its own process lives and an HTTP request gets moto's answer, and a lost port is
    /// retried on a new one.
    fn spawn(program: &str, command_for: impl Fn(u16) -> Command) -> Self {
        for _ in 0..5 {
            let port = free_port();
            let mut child = command_for(port)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start `{program}` ({e}): run the README's test command, which installs moto[server]"));
            let started = Instant::now();
            loop {
                if child.try_wait().ok().flatten().is_some() {
                    break; // lost the port: try another
                }
                if answers_as_moto(port) {
                    return Self {
                        child,
                        url: format!("http://127.0.0.1:{port}"),
                    };
                }
                assert!(
                    started.elapsed() < Duration::from_secs(60),
                    "moto_server did not answer within 60 s"
                );
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        panic!("moto_server exited five times on start: is another process taking loopback ports?")
    }
}

/// Whether `GET /moto-api/data.json` on the port gets moto's JSON answer.
fn answers_as_moto(port: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let request = format!(
        "GET /moto-api/data.json HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    );
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer.starts_with("HTTP/1.1 200") || answer.starts_with("HTTP/1.0 200")
}

impl MotoServer {
    /// Runs the AWS CLI (`$AWS_CLI`, or `aws`) against this server and returns its JSON output
    /// (`Null` when it prints none). Panics with the CLI's error when the command fails.
    pub fn cli(&self, args: &[&str]) -> serde_json::Value {
        let cli = std::env::var("AWS_CLI").unwrap_or_else(|_| "aws".into());
        let out = Command::new(&cli)
            .arg("--endpoint-url")
            .arg(&self.url)
            .args(args)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .env("AWS_CONFIG_FILE", "/nonexistent")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
            .output()
            .unwrap_or_else(|e| panic!("cannot run `{cli}` ({e}): run the README's test command, which installs the AWS CLI"));
        assert!(
            out.status.success(),
            "aws {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null)
    }
}

impl MotoServer {
    /// Creates a DynamoDB table keyed by the string `pk`, as the template's executions table.
    pub fn create_executions_table(&self, table: &str) {
        self.cli(&[
            "dynamodb",
            "create-table",
            "--table-name",
            table,
            "--attribute-definitions",
            "AttributeName=pk,AttributeType=S",
            "--key-schema",
            "AttributeName=pk,KeyType=HASH",
            "--billing-mode",
            "PAY_PER_REQUEST",
        ]);
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
