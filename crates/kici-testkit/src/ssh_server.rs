//! A real OpenSSH server on 127.0.0.1 for tests of SSH clones: its own host key, one authorized
//! client key, public-key login only, as the user running the tests. `None` when `sshd` is not
//! installed (`KICI_TEST_REQUIRE_SSHD` makes that a failure; `scripts/test.sh` installs it).

use std::io::Read as _;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const SSHD: &str = "/usr/sbin/sshd";

pub struct SshServer {
    pub port: u16,
    /// The user the server lets in (the one running the tests).
    pub user: String,
    /// The client's private key file, which the server authorizes.
    pub client_key: PathBuf,
    /// The server's key as a `known_hosts` line (`[127.0.0.1]:<port> ssh-ed25519 …`).
    pub known_hosts_line: String,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Drop for SshServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn run(program: &str, args: &[&str]) -> String {
    let output = Command::new(program).args(args).output().expect("the program runs");
    assert!(
        output.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

fn keygen(path: &Path) {
    run(
        "ssh-keygen",
        &[
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-C",
            "kici-test",
            "-f",
            &path.display().to_string(),
        ],
    );
}

impl SshServer {
    pub fn start() -> Option<SshServer> {
        if !Path::new(SSHD).exists() {
            assert!(
                std::env::var("KICI_TEST_REQUIRE_SSHD").is_err(),
                "KICI_TEST_REQUIRE_SSHD is set but {SSHD} is missing (apt-get install openssh-server)"
            );
            return None;
        }
        let dir = tempfile::tempdir().expect("temp dir");
        let (host_key, client_key) = (dir.path().join("host_key"), dir.path().join("client_key"));
        keygen(&host_key);
        keygen(&client_key);
        let authorized = dir.path().join("authorized_keys");
        std::fs::copy(client_key.with_extension("pub"), &authorized).expect("authorize the client key");
        let port = crate::free_port();
        let config = dir.path().join("sshd_config");
        std::fs::write(
            &config,
            format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {}\nAuthorizedKeysFile {}\nPasswordAuthentication no\n\
                 KbdInteractiveAuthentication no\nPubkeyAuthentication yes\nPermitRootLogin prohibit-password\n\
                 StrictModes no\nUsePAM no\nPidFile {}/sshd.pid\n",
                host_key.display(),
                authorized.display(),
                dir.path().display()
            ),
        )
        .expect("write sshd_config");
        // sshd wants its privilege-separation directory.
        let _ = std::fs::create_dir_all("/run/sshd");
        let mut child = Command::new(SSHD)
            .args(["-D", "-e", "-f"])
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("sshd starts");
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline || child.try_wait().ok().flatten().is_some() {
                let mut stderr = String::new();
                let _ = child.stderr.take().map(|mut e| e.read_to_string(&mut stderr));
                let _ = child.kill();
                panic!("sshd did not start on 127.0.0.1:{port}: {stderr}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let host_public = std::fs::read_to_string(host_key.with_extension("pub")).expect("the host key");
        let key: Vec<&str> = host_public.split_whitespace().take(2).collect();
        Some(SshServer {
            port,
            user: run("id", &["-un"]),
            client_key,
            known_hosts_line: format!("[127.0.0.1]:{port} {}", key.join(" ")),
            child,
            _dir: dir,
        })
    }

    /// The `ssh://` URL of a repository at `path` on this server.
    pub fn url(&self, path: &Path) -> String {
        format!("ssh://{}@127.0.0.1:{}{}", self.user, self.port, path.display())
    }
}
