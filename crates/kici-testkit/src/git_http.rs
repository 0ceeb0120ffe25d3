//! A private git server over smart HTTP for tests: git's own `git http-backend` (CGI) behind
//! HTTP Basic authentication, serving the bare repositories under a directory. A request
//! without the right user and password gets 401 with a `WWW-Authenticate` challenge, as a
//! forge answers, so git asks its credential helper.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use std::io::{BufReader, Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

pub struct GitHttpServer {
    pub url: String,
    /// `(method, target, authorized)` of each request, in order.
    requests: Arc<Mutex<Vec<(String, String, bool)>>>,
}

impl GitHttpServer {
    /// Serves `root`'s repositories (`<url>/<path under root>`) to `username`:`password` only.
    pub fn start(root: &Path, username: &str, password: &str) -> GitHttpServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
        let url = format!("http://{}", listener.local_addr().expect("a bound address"));
        let expected = format!("Basic {}", STANDARD.encode(format!("{username}:{password}")));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let recorded = Arc::clone(&requests);
        let root = root.to_path_buf();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let (root, expected, recorded) = (root.clone(), expected.clone(), Arc::clone(&recorded));
                std::thread::spawn(move || serve(stream, &root, &expected, &recorded));
            }
        });
        GitHttpServer { url, requests }
    }

    pub fn requests(&self) -> Vec<(String, String, bool)> {
        self.requests.lock().expect("request log").clone()
    }
}

fn serve(stream: TcpStream, root: &PathBuf, expected: &str, recorded: &Mutex<Vec<(String, String, bool)>>) {
    let mut reader = BufReader::new(stream.try_clone().expect("clone the stream"));
    let Some((method, target, headers)) = crate::fake_api::read_head(&mut reader) else {
        return;
    };
    let header = |name: &str| headers.get(name).map(String::as_str);
    let authorized = header("authorization") == Some(expected);
    recorded
        .lock()
        .expect("request log")
        .push((method.clone(), target.clone(), authorized));
    let mut stream = stream;
    if !authorized {
        let _ = stream.write_all(
            b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"git\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        );
        return;
    }
    let length: usize = header("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
    let mut body = vec![0; length];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let mut child = Command::new("git")
        .arg("http-backend")
        .env("GIT_PROJECT_ROOT", root)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("REQUEST_METHOD", &method)
        .env("PATH_INFO", path)
        .env("QUERY_STRING", query)
        .env("CONTENT_TYPE", header("content-type").unwrap_or_default())
        .env("CONTENT_LENGTH", length.to_string())
        .env("HTTP_CONTENT_ENCODING", header("content-encoding").unwrap_or_default())
        .env("GIT_PROTOCOL", header("git-protocol").unwrap_or_default())
        .env("REMOTE_USER", "kici")
        .env("REMOTE_ADDR", "127.0.0.1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("git http-backend runs");
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(&body);
    }
    let output = child.wait_with_output().expect("git http-backend finishes");
    // CGI: headers, a blank line, the body.
    let split = output
        .stdout
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| (i, 4))
        .or_else(|| output.stdout.windows(2).position(|w| w == b"\n\n").map(|i| (i, 2)));
    let Some((at, gap)) = split else {
        let _ =
            stream.write_all(b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        return;
    };
    let cgi_headers = String::from_utf8_lossy(&output.stdout[..at]).to_string();
    let content = &output.stdout[at + gap..];
    let mut status = "200 OK".to_string();
    let mut response = String::new();
    for line in cgi_headers.lines() {
        match line.split_once(':') {
            Some((name, value)) if name.eq_ignore_ascii_case("status") => status = value.trim().to_string(),
            Some(_) => response.push_str(&format!("{line}\r\n")),
            None => {}
        }
    }
    let head = format!(
        "HTTP/1.1 {status}\r\n{response}Content-Length: {}\r\nConnection: close\r\n\r\n",
        content.len()
    );
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(content);
}
