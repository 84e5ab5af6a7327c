//! Test support: small trained bundles (made once per run) and a real `aegis serve` process on
//! port 0 in a temporary directory.

use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Two bundles trained on the same small generated file: `a` with the default thresholds and
/// `b` flagging 40% of traffic (so alert tests get flagged transactions).
pub struct Bundles {
    _dir: tempfile::TempDir,
    pub a: PathBuf,
    pub b: PathBuf,
    pub data: PathBuf,
}

pub fn bundles() -> &'static Bundles {
    static BUNDLES: OnceLock<Bundles> = OnceLock::new();
    BUNDLES.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let common = ["--epochs", "3", "--trees", "50", "--data", "tx.csv"];
        // 20 days: labels known 7 days after each transaction leave enough frauds to learn from.
        super::aegis_ok(d, &["generate", "--rows", "6000", "--cards", "300", "--days", "20", "--out", "tx.csv"]);
        super::aegis_ok(d, &[&["train", "--out", "a"][..], &common].concat());
        let high = ["--review-rate", "0.4", "--block-rate", "0.1", "--seed", "7"];
        super::aegis_ok(d, &[&["train", "--out", "b"][..], &common, &high].concat());
        let resolve = |p: &str| std::fs::canonicalize(d.join(p).join("current")).unwrap();
        Bundles { a: resolve("a"), b: resolve("b"), data: d.join("tx.csv"), _dir: dir }
    })
}

/// A models root in `dir` whose `current` points at `bundle`.
pub fn models_root(dir: &Path, bundle: &Path) -> PathBuf {
    let root = dir.join("models");
    std::fs::create_dir_all(&root).unwrap();
    point_current(&root, bundle);
    root
}

/// Repoints `root/current` at `target` (atomically, as `aegis train` does).
pub fn point_current(root: &Path, target: &Path) {
    let tmp = root.join(".tmp-link");
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(target, &tmp).unwrap();
    std::fs::rename(&tmp, root.join("current")).unwrap();
}

/// A running `aegis serve`, killed on drop.
pub struct Server {
    child: Child,
    pub url: String,
    pub db: PathBuf,
    output: Arc<Mutex<String>>,
    client: reqwest::blocking::Client,
}

impl Server {
    /// Starts `aegis serve --models models --db dir/results.db --addr 127.0.0.1:0 <extra>`.
    pub fn start(dir: &Path, models: &Path, extra: &[&str], env: &[(&str, &str)]) -> Self {
        // `--db` in `extra` shares another server's database.
        let shared = extra.iter().position(|a| *a == "--db").map(|i| PathBuf::from(extra[i + 1]));
        let db = shared.clone().unwrap_or_else(|| dir.join("results.db"));
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_aegis"));
        cmd.arg("serve").arg("--models").arg(models);
        if shared.is_none() {
            cmd.arg("--db").arg(&db);
        }
        cmd.args(["--addr", "127.0.0.1:0", "--log", "warn"])
            .args(extra)
            .env_remove("AEGIS_CARD_KEY")
            .env_remove("AEGIS_API_TOKEN")
            .current_dir(dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        let output = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let (output, tx) = (Arc::clone(&output), tx.clone());
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    if let Some(url) = line.split(" at ").nth(1).filter(|_| line.starts_with("Aegis is serving")) {
                        let _ = tx.send(url.to_owned());
                    }
                    output.lock().unwrap().push_str(&(line + "\n"));
                }
            });
        }
        let url = rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("the server did not start:\n{}", output.lock().unwrap()));
        let client = reqwest::blocking::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
        Self { child, url, db, output, client }
    }

    pub fn client(&self) -> &reqwest::blocking::Client {
        &self.client
    }

    /// POSTs `body` as JSON to `path` with an optional bearer token: (status, JSON body).
    pub fn post(&self, path: &str, body: &Value, token: Option<&str>) -> (u16, Value) {
        let mut req = self.client.post(format!("{}{path}", self.url)).json(body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().unwrap_or(Value::Null))
    }

    pub fn predict(&self, body: &Value) -> (u16, Value) {
        self.post("/predict", body, None)
    }

    pub fn get(&self, path: &str) -> (u16, String) {
        let resp = self.client.get(format!("{}{path}", self.url)).send().unwrap();
        (resp.status().as_u16(), resp.text().unwrap())
    }

    pub fn signal(&self, signal: &str) {
        let ok = Command::new("kill").args([signal, &self.child.id().to_string()]).status().unwrap().success();
        assert!(ok, "kill {signal} failed");
    }

    /// Waits for the process to exit; returns whether it exited successfully.
    pub fn wait(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.success();
            }
            assert!(Instant::now() < deadline, "the server did not exit:\n{}", self.output());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn output(&self) -> String {
        self.output.lock().unwrap().clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A valid transaction for card `pan` (Luhn-valid) with id `id`.
pub fn txn(id: &str, pan: &str, amount: f64, country: &str, ts: &str) -> Value {
    json!({"txn_id": id, "timestamp": ts, "amount": amount, "country": country, "merchant": "M000001",
           "merchant_category": "grocery", "card_num": pan})
}

/// A Luhn-valid 16-digit card number from a small integer.
pub fn pan(n: u64) -> String {
    let payload = format!("411111{n:09}");
    let check = aegis::domain::luhn_check_digit(payload.as_bytes()) as char;
    format!("{payload}{check}")
}
