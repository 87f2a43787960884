//! A real SMTP server for the tests (`scripts/smtp/smtp.py`, PyPI aiosmtpd): every mail it
//! accepts, exactly as it arrived.

use std::{
    io::{BufRead, BufReader},
    process::{Child, ChildStdin, Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use serde_json::Value;

/// One mail as the server received it.
#[derive(Clone, Debug)]
pub struct Received {
    pub mail_from: String,
    pub rcpt_tos: Vec<String>,
    /// The message, headers and body, as sent on the wire.
    pub data: String,
}

impl Received {
    /// A header's value (unfolded), if present.
    pub fn header(&self, name: &str) -> Option<String> {
        let head = self.data.split("\r\n\r\n").next().unwrap_or_default();
        let mut value: Option<String> = None;
        let mut in_header = false;
        for line in head.split("\r\n") {
            if line.starts_with([' ', '\t']) {
                if in_header {
                    if let Some(value) = value.as_mut() {
                        value.push_str(line.trim_start());
                    }
                }
                continue;
            }
            in_header = false;
            if let Some((key, rest)) = line.split_once(':') {
                if key.eq_ignore_ascii_case(name) && value.is_none() {
                    value = Some(rest.trim().to_owned());
                    in_header = true;
                }
            }
        }
        value
    }
}

pub struct Smtp {
    child: Child,
    stdin: Option<ChildStdin>,
    pub port: u16,
    received: Arc<Mutex<Vec<Received>>>,
}

impl Smtp {
    /// Starts a server on a free loopback port.
    pub fn start() -> Smtp {
        Self::start_with(0, false)
    }

    /// On `port` (0: any); `refuse`: every recipient gets a temporary failure (451).
    pub fn start_with(port: u16, refuse: bool) -> Smtp {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/smtp");
        let python = format!("{dir}/.venv/bin/python");
        assert!(
            std::path::Path::new(&python).exists(),
            "the test SMTP server is not installed: run scripts/ensure-tools.sh all (make test does)"
        );
        let mut child = Command::new(python)
            .arg("smtp.py")
            .current_dir(dir)
            .env("SMTP_PORT", port.to_string())
            .env("SMTP_REFUSE", if refuse { "1" } else { "0" })
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python runs the test SMTP server");
        let stdin = child.stdin.take();
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let first = lines
            .next()
            .expect("the SMTP server says where it listens")
            .expect("read its first line");
        let info: Value = serde_json::from_str(&first).expect("the start-up line");
        let port = info["port"].as_u64().expect("port") as u16;
        let received = Arc::new(Mutex::new(Vec::new()));
        let sink = received.clone();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                let Ok(mail) = serde_json::from_str::<Value>(&line) else {
                    continue;
                };
                let rcpt_tos = mail["rcpt_tos"]
                    .as_array()
                    .map(|list| {
                        list.iter()
                            .filter_map(|to| to.as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default();
                sink.lock().expect("mail list").push(Received {
                    mail_from: mail["mail_from"].as_str().unwrap_or_default().to_owned(),
                    rcpt_tos,
                    data: mail["data"].as_str().unwrap_or_default().to_owned(),
                });
            }
        });
        Smtp {
            child,
            stdin,
            port,
            received,
        }
    }

    /// `SMTP_URL` for this server (plain SMTP: it is on loopback).
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Every mail received so far.
    pub fn received(&self) -> Vec<Received> {
        self.received.lock().expect("mail list").clone()
    }

    /// Waits until at least `count` mails arrived (or `timeout` passed), and returns them all.
    pub async fn wait_for(&self, count: usize, timeout: Duration) -> Vec<Received> {
        let deadline = Instant::now() + timeout;
        loop {
            let received = self.received();
            if received.len() >= count || Instant::now() >= deadline {
                return received;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Stops the server (its port becomes free).
    pub fn stop(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Smtp {
    fn drop(&mut self) {
        self.stop();
    }
}
