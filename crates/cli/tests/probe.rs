//! `guestwall probe` as a process, against servers on this machine only: a real xrdp on
//! loopback (TLS, standard RDP security, a negotiation failure, a TLS failure), a closed
//! port, listeners that never answer or answer something else, and a port whose packets are
//! dropped (nftables in a network namespace the test creates).

mod common;

use common::*;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn probe_json(args: &[&str]) -> (Option<i32>, serde_json::Value, Duration) {
    let mut all = vec!["probe", "--json"];
    all.extend_from_slice(args);
    let start = Instant::now();
    let o = gw(&all);
    let took = start.elapsed();
    let doc = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("{e}: {} {}", stdout(&o), stderr(&o)));
    (o.status.code(), doc, took)
}

/// A free loopback port (bound, then released).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Skips (with a notice) when a tool is missing, except under CI.
fn need(tools: &[&str], why: &str) -> bool {
    let missing: Vec<&&str> = tools.iter().filter(|t| !have(t)).collect();
    if missing.is_empty() {
        return true;
    }
    assert!(!in_ci(), "CI=true but {missing:?} missing ({why})");
    notice(&format!("skipping {why}: {missing:?} not installed"));
    false
}

#[test]
fn a_closed_port_is_refused() {
    let port = free_port().to_string();
    let (code, doc, took) = probe_json(&["--timeout", "2", &format!("127.0.0.1:{port}")]);
    assert_eq!(code, Some(1));
    assert_eq!(doc["outcome"], "refused", "{doc}");
    assert_eq!(doc["rdp_answers"], false);
    assert!(doc["connect_ms"].is_null());
    assert!(doc["likely_causes"][0]
        .as_str()
        .unwrap()
        .contains("nothing listens"));
    assert!(doc["next"][0]
        .as_str()
        .unwrap()
        .starts_with("guestwall diagnose"));
    assert!(took < Duration::from_secs(2), "{took:?}");
}

#[test]
fn a_listener_that_never_answers_is_silence_within_the_timeout() {
    // Accepts (the kernel completes the handshake) and never writes.
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let held = std::thread::spawn(move || {
        let (s, _) = l.accept().unwrap();
        std::thread::sleep(Duration::from_secs(3));
        drop(s);
    });
    let (code, doc, took) = probe_json(&["--timeout", "0.5", &format!("127.0.0.1:{port}")]);
    assert_eq!(code, Some(1));
    assert_eq!(doc["outcome"], "no-rdp-answer", "{doc}");
    assert!(doc["connect_ms"].is_number());
    assert!(took < Duration::from_millis(2500), "{took:?}");
    held.join().unwrap();
    // A listener whose backlog holds the connection and that never accepts: the same.
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let (_, doc, took) = probe_json(&["--timeout", "0.5", &format!("127.0.0.1:{port}")]);
    assert_eq!(doc["outcome"], "no-rdp-answer", "{doc}");
    assert!(took < Duration::from_millis(2500), "{took:?}");
    drop(l);
}

#[test]
fn other_servers_are_not_rdp_and_a_closed_connection_is_said() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        // First client: an SSH banner. Second: closed at once.
        let (mut s, _) = l.accept().unwrap();
        let _ = s.write_all(b"SSH-2.0-OpenSSH_9.2\r\n");
        let (s, _) = l.accept().unwrap();
        drop(s);
    });
    let target = format!("127.0.0.1:{port}");
    let (code, doc, _) = probe_json(&["--timeout", "2", &target]);
    assert_eq!(code, Some(1));
    assert_eq!(doc["outcome"], "not-rdp", "{doc}");
    assert!(
        doc["first_bytes"].as_str().unwrap().starts_with("5353482d"),
        "{doc}"
    );
    let o = gw(&["probe", "--timeout", "2", &target]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stdout(&o).contains("RDP did not answer: the connection was closed"),
        "{}",
        stdout(&o)
    );
    server.join().unwrap();
}

#[test]
fn a_dropped_syn_is_no_answer() {
    // In a network namespace of its own (only its loopback), nftables drops TCP to the port:
    // the SYN goes unanswered and nothing leaves the machine.
    if !need(&["unshare", "nft", "ip"], "the dropped-SYN probe") {
        return;
    }
    let script = format!(
        "ip link set lo up && nft add table inet gw && \
         nft add chain inet gw in '{{ type filter hook input priority 0; policy accept; }}' && \
         nft add rule inet gw in tcp dport 3389 drop && \
         exec {} probe --json --timeout 1 127.0.0.1",
        env!("CARGO_BIN_EXE_guestwall")
    );
    let start = Instant::now();
    let o = Command::new("unshare")
        .args(["-n", "sh", "-c", &script])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let took = start.elapsed();
    if o.stdout.is_empty() {
        // unshare or nft refused (no privileges for a network namespace).
        assert!(!in_ci(), "cannot make a network namespace: {}", stderr(&o));
        notice(&format!(
            "skipping the dropped-SYN probe: {}",
            stderr(&o).trim()
        ));
        return;
    }
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(doc["outcome"], "no-answer", "{doc}");
    assert_eq!(doc["port"], 3389);
    assert!(doc["likely_causes"][0]
        .as_str()
        .unwrap()
        .contains("guest firewall drops"));
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(4),
        "{took:?}"
    );
}

#[test]
fn bad_input_is_exit_2() {
    let o = gw(&["probe", "127.0.0.1:99999"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("no TCP port"), "{}", stderr(&o));
    let o = gw(&["probe", "--json", "--request", "ssh", "127.0.0.1"]);
    assert_eq!(o.status.code(), Some(2));
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(doc["error"]["message"]
        .as_str()
        .unwrap()
        .contains("not a protocol"));
}

/// xrdp on a free loopback port, with its configuration, certificate and log in a temporary
/// folder; stopped (by its own process ID) when dropped.
struct Xrdp {
    child: Child,
    port: u16,
}

impl Xrdp {
    fn start(dir: &Path, name: &str, settings: &str) -> Xrdp {
        let port = free_port();
        let ini = dir.join(format!("{name}.ini"));
        std::fs::write(
            &ini,
            format!(
                "[Globals]\nini_version=1\nfork=false\nport=tcp://127.0.0.1:{port}\n\
                 crypt_level=high\ncertificate={cert}\nkey_file={key}\n{settings}\n\
                 [Logging]\nLogFile={log}\nLogLevel=INFO\nEnableSyslog=false\n",
                cert = dir.join("cert.pem").display(),
                key = dir.join("key.pem").display(),
                log = dir.join(format!("{name}.log")).display(),
            ),
        )
        .unwrap();
        let child = Command::new("xrdp")
            .arg("--nodaemon")
            .arg("--config")
            .arg(&ini)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let x = Xrdp { child, port };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "xrdp did not listen on {port}");
            std::thread::sleep(Duration::from_millis(50));
        }
        x
    }

    fn target(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for Xrdp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn real_xrdp_on_loopback() {
    if !need(&["xrdp", "openssl"], "the xrdp probes") {
        return;
    }
    let t = TempDir::new("probe-xrdp");
    let ok = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        ])
        .args(["-subj", "/CN=guestwall-test", "-keyout"])
        .arg(t.0.join("key.pem"))
        .arg("-out")
        .arg(t.0.join("cert.pem"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(ok.success());
    let mut fp = String::new();
    Command::new("openssl")
        .args(["x509", "-noout", "-fingerprint", "-sha256", "-in"])
        .arg(t.0.join("cert.pem"))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap()
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut fp)
        .unwrap();
    let fingerprint = fp.trim().rsplit('=').next().unwrap().to_string();

    // Negotiate: TLS when the client offers TLS and CredSSP, standard RDP when it offers none.
    let x = Xrdp::start(
        &t.0,
        "negotiate",
        "security_layer=negotiate\nssl_protocols=TLSv1.2, TLSv1.3",
    );
    let (code, doc, _) = probe_json(&[&x.target()]);
    assert_eq!(code, Some(0), "{doc}");
    assert_eq!(doc["outcome"], "rdp");
    assert_eq!(doc["protocol"], "tls", "{doc}");
    assert_eq!(doc["requested"], serde_json::json!(["tls", "nla"]));
    assert_eq!(doc["tls"]["result"], "completed", "{doc}");
    assert!(doc["tls"]["version"]
        .as_str()
        .unwrap()
        .starts_with("TLSv1."));
    assert_eq!(doc["tls"]["certificate_sha256"], fingerprint.as_str());
    assert!(doc["answer_ms"].is_number());
    let (code, doc, _) = probe_json(&["--request", "rdp", &x.target()]);
    assert_eq!(code, Some(0));
    assert_eq!(doc["protocol"], "rdp", "{doc}");
    assert!(doc["tls"].is_null());
    // Text: each step, the result, the next command naming the endpoint.
    let o = gw(&["probe", &x.target()]);
    let text = stdout(&o);
    assert!(text.contains("TCP: connected"), "{text}");
    assert!(text.contains("TLS selected"), "{text}");
    assert!(
        text.contains(&format!("Certificate SHA-256: {fingerprint}")),
        "{text}"
    );
    assert!(text.contains("Result: RDP answers (TLS)."), "{text}");
    assert!(text.contains(&format!("mstsc /v:{}", x.target())), "{text}");
    assert!(!o.stdout.contains(&0x1b));
    let o = gw(&["probe", "--color", "always", &x.target()]);
    assert!(
        stdout(&o).contains("\u{1b}[32mRDP answers"),
        "{}",
        stdout(&o)
    );
    drop(x);

    // TLS required: a client that offers only standard RDP gets SSL_REQUIRED_BY_SERVER.
    let x = Xrdp::start(
        &t.0,
        "tls",
        "security_layer=tls\nssl_protocols=TLSv1.2, TLSv1.3",
    );
    let (code, doc, _) = probe_json(&["--request", "rdp", &x.target()]);
    assert_eq!(code, Some(1));
    assert_eq!(doc["outcome"], "negotiation-failure", "{doc}");
    assert_eq!(doc["failure"]["code"], 1);
    assert_eq!(doc["failure"]["name"], "SSL_REQUIRED_BY_SERVER");
    assert_eq!(
        doc["likely_causes"][0],
        "the firewall path is open: an RDP server answered"
    );
    drop(x);

    // A server that speaks only TLS 1.0: the negotiation succeeds, the handshake does not.
    let x = Xrdp::start(&t.0, "old", "security_layer=negotiate\nssl_protocols=TLSv1");
    let (code, doc, _) = probe_json(&[&x.target()]);
    assert_eq!(code, Some(1), "{doc}");
    assert_eq!(doc["outcome"], "rdp");
    assert_eq!(doc["protocol"], "tls");
    assert_eq!(doc["tls"]["result"], "failed", "{doc}");
    assert!(
        doc["tls"]["message"]
            .as_str()
            .unwrap()
            .contains("TLS 1.2 and 1.3"),
        "{doc}"
    );
    assert_eq!(doc["rdp_answers"], false);
    // --no-tls stops after the negotiation.
    let (code, doc, _) = probe_json(&["--no-tls", &x.target()]);
    assert_eq!(code, Some(0), "{doc}");
    assert!(doc["tls"].is_null());
}
