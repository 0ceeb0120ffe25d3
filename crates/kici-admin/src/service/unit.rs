//! What an installed service is made of: where its files go (system-wide or for one user) and
//! the systemd unit that runs it, hardened for what each service does. Pure: the commands in
//! `service` write and run what this describes.

use std::path::{Path, PathBuf};

/// Which service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Orchestrator,
    Agent,
}

impl Kind {
    /// Its binary, and its default service name.
    pub fn binary(self) -> &'static str {
        match self {
            Kind::Orchestrator => "kici-orchestrator",
            Kind::Agent => "kici-agent",
        }
    }

    fn description(self) -> &'static str {
        match self {
            Kind::Orchestrator => "KiCI orchestrator",
            Kind::Agent => "KiCI agent",
        }
    }
}

/// A system service (root, `/etc`, `/opt`, `/var/lib`) or one of the user's own (`~/.config`,
/// `~/.local`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    System,
    User,
}

/// Where an installed service's files are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    pub kind: Kind,
    pub scope: Scope,
    pub name: String,
    /// The unit file.
    pub unit: PathBuf,
    /// The environment file the unit reads (mode 0600: it may hold tokens).
    pub env_file: PathBuf,
    /// Installed binaries, one directory per version; `current` and `previous` link to two.
    pub versions: PathBuf,
    /// Its data directory (`KICI_DATA_DIR` / `KICI_WORK_DIR`).
    pub state: PathBuf,
    /// Installed by its Debian package (binary in `/usr/bin`, upgraded with the package), not by
    /// `kici-admin … install`.
    pub packaged: bool,
}

impl Layout {
    /// `home`: the user's home directory (user scope).
    pub fn new(kind: Kind, scope: Scope, name: &str, home: &Path) -> Layout {
        let (unit_dir, config, share, state) = match scope {
            Scope::System => (
                PathBuf::from("/etc/systemd/system"),
                PathBuf::from("/etc/kici"),
                PathBuf::from("/opt/kici"),
                PathBuf::from("/var/lib/kici"),
            ),
            Scope::User => (
                home.join(".config/systemd/user"),
                home.join(".config/kici"),
                home.join(".local/share/kici"),
                home.join(".local/state/kici"),
            ),
        };
        Layout {
            kind,
            scope,
            name: name.to_string(),
            unit: unit_dir.join(format!("{name}.service")),
            env_file: config.join(name).join(format!("{name}.env")),
            versions: share.join(name),
            state: state.join(name),
            packaged: false,
        }
    }

    /// The service as its Debian package installs it: the same settings, data and user as a
    /// system install, the unit beside the system's own and the binary in `/usr/bin`.
    pub fn packaged(kind: Kind) -> Layout {
        let name = kind.binary();
        Layout {
            unit: PathBuf::from(format!("/usr/lib/systemd/system/{name}.service")),
            packaged: true,
            ..Layout::new(kind, Scope::System, name, Path::new("/root"))
        }
    }

    /// The binary the unit runs.
    pub fn exec(&self) -> PathBuf {
        if self.packaged {
            Path::new("/usr/bin").join(self.kind.binary())
        } else {
            self.current().join(self.kind.binary())
        }
    }

    /// The system user a system service runs as: one per service, so a job on an agent cannot
    /// read the orchestrator's data or signal it. `systemd-sysusers` creates it
    /// ([`Layout::sysusers`]); `DynamicUser=` would too, but needs mount namespaces that
    /// containers running systemd often cannot give.
    pub fn user(&self) -> String {
        if self.name.starts_with("kici-") {
            self.name.clone()
        } else {
            format!("kici-{}", self.name)
        }
    }

    /// Its `/etc/sysusers.d/<user>.conf`: a user with no login and no home beyond its state.
    pub fn sysusers(&self) -> String {
        format!(
            "u {} - \"KiCI {}\" {} /usr/sbin/nologin\n",
            self.user(),
            self.name,
            self.state.display()
        )
    }

    /// The link to the binary the unit runs.
    pub fn current(&self) -> PathBuf {
        self.versions.join("current")
    }

    /// The link to the binary before the last upgrade.
    pub fn previous(&self) -> PathBuf {
        self.versions.join("previous")
    }

    /// The systemd unit.
    pub fn unit_text(&self) -> String {
        let kind = self.kind;
        let exec = self.exec();
        let state = self.state.display();
        let verb = match kind {
            Kind::Orchestrator => "orchestrator",
            Kind::Agent => "agent",
        };
        let origin = if self.packaged {
            format!(
                "# Installed by the {} package; `kici-admin {verb} start|stop|status|logs` drive it.\n",
                self.name
            )
        } else {
            format!("# Written by `kici-admin {verb} install`; `kici-admin {verb} uninstall` removes it.\n")
        };
        let mut unit = format!(
            "{origin}\
             [Unit]\n\
             Description={} ({})\n\
             After=network-online.target\n\
             Wants=network-online.target\n\
             \n\
             [Service]\n\
             Type=exec\n\
             ExecStart={}\n",
            kind.description(),
            self.name,
            exec.display(),
        );
        match kind {
            Kind::Orchestrator => unit.push_str(&format!("Environment=KICI_DATA_DIR={state}\n")),
            Kind::Agent => unit.push_str(&format!(
                "Environment=KICI_WORK_DIR={state}/work HOME={state}\nExecStartPre=/bin/mkdir -p {state}/work\n"
            )),
        }
        // The operator's settings come last, so they win.
        unit.push_str(&format!("EnvironmentFile={}\n", self.env_file.display()));
        unit.push_str(
            "Restart=on-failure\n\
             RestartSec=2s\n\
             TimeoutStopSec=30s\n\
             UMask=0077\n",
        );
        if self.scope == Scope::System {
            // A user of its own ([`Layout::user`]), owning only its state.
            unit.push_str(&format!(
                "User={user}\nGroup={user}\nStateDirectory=kici/{}\nStateDirectoryMode=0700\n",
                self.name,
                user = self.user()
            ));
        }
        // What neither service needs (seccomp-based, so a user's own manager applies them too).
        unit.push_str(
            "NoNewPrivileges=yes\n\
             RestrictSUIDSGID=yes\n\
             RestrictRealtime=yes\n\
             LockPersonality=yes\n",
        );
        match self.scope {
            // Namespaces and capabilities, which only the system manager sets up. Neither gets a
            // seccomp filter or loses writable-executable memory: the agent runs jobs (Node.js
            // has a JIT), and so do the agents a bare-metal scaler starts as the
            // orchestrator's children, which inherit its limits.
            Scope::System => {
                unit.push_str(
                    "PrivateTmp=yes\n\
                     PrivateDevices=yes\n\
                     ProtectSystem=strict\n\
                     ProtectHome=yes\n\
                     ProtectKernelTunables=yes\n\
                     ProtectKernelModules=yes\n\
                     ProtectKernelLogs=yes\n\
                     ProtectControlGroups=yes\n\
                     ProtectClock=yes\n\
                     ProtectHostname=yes\n\
                     CapabilityBoundingSet=\n\
                     AmbientCapabilities=\n",
                );
                // Processes see only their own service's (`/proc/<pid>/environ` holds tokens).
                unit.push_str("ProtectProc=invisible\n");
            }
            Scope::User => unit.push_str(&format!("ExecStartPre=/bin/mkdir -p {state}\n")),
        }
        let target = match self.scope {
            Scope::System => "multi-user.target",
            Scope::User => "default.target",
        };
        unit.push_str(&format!("\n[Install]\nWantedBy={target}\n"));
        unit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn has_lines(unit: &str, lines: &[&str]) {
        for line in lines {
            assert!(unit.lines().any(|l| l == *line), "{line} missing from\n{unit}");
        }
    }

    /// The units and users the Debian packages ship are the ones this code writes
    /// (`KICI_UPDATE_PACKAGING=1` rewrites them).
    #[test]
    fn the_packages_ship_the_units_and_users_this_build_writes() {
        let crates = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        for kind in [Kind::Orchestrator, Kind::Agent] {
            let layout = Layout::packaged(kind);
            let name = kind.binary();
            for (file, text) in [
                (format!("{name}.service"), layout.unit_text()),
                (format!("{name}.sysusers"), layout.sysusers()),
            ] {
                let path = crates.join(name).join("debian").join(file);
                if std::env::var_os("KICI_UPDATE_PACKAGING").is_some() {
                    std::fs::write(&path, &text).unwrap();
                }
                let shipped = std::fs::read_to_string(&path).unwrap_or_default();
                assert_eq!(
                    shipped,
                    text,
                    "{} differs from what this build writes (hint: KICI_UPDATE_PACKAGING=1 cargo test -p kici-admin rewrites it)",
                    path.display()
                );
            }
        }
        let unit = Layout::packaged(Kind::Orchestrator).unit_text();
        has_lines(
            &unit,
            &[
                "ExecStart=/usr/bin/kici-orchestrator",
                "EnvironmentFile=/etc/kici/kici-orchestrator/kici-orchestrator.env",
                "User=kici-orchestrator",
                "StateDirectory=kici/kici-orchestrator",
            ],
        );
    }

    #[test]
    fn a_system_orchestrator_runs_hardened_as_a_user_of_its_own() {
        let layout = Layout::new(
            Kind::Orchestrator,
            Scope::System,
            "kici-orchestrator",
            Path::new("/root"),
        );
        assert_eq!(layout.unit, Path::new("/etc/systemd/system/kici-orchestrator.service"));
        assert_eq!(
            layout.env_file,
            Path::new("/etc/kici/kici-orchestrator/kici-orchestrator.env")
        );
        let unit = layout.unit_text();
        has_lines(
            &unit,
            &[
                "ExecStart=/opt/kici/kici-orchestrator/current/kici-orchestrator",
                "Environment=KICI_DATA_DIR=/var/lib/kici/kici-orchestrator",
                "EnvironmentFile=/etc/kici/kici-orchestrator/kici-orchestrator.env",
                "User=kici-orchestrator",
                "StateDirectory=kici/kici-orchestrator",
                "NoNewPrivileges=yes",
                "ProtectSystem=strict",
                "ProtectHome=yes",
                "PrivateTmp=yes",
                "ProtectProc=invisible",
                "WantedBy=multi-user.target",
            ],
        );
    }

    #[test]
    fn a_user_agent_keeps_its_work_under_the_users_state_and_may_run_any_job() {
        let layout = Layout::new(Kind::Agent, Scope::User, "builder", Path::new("/home/ci"));
        assert_eq!(layout.unit, Path::new("/home/ci/.config/systemd/user/builder.service"));
        let unit = layout.unit_text();
        has_lines(
            &unit,
            &[
                "ExecStart=/home/ci/.local/share/kici/builder/current/kici-agent",
                "Environment=KICI_WORK_DIR=/home/ci/.local/state/kici/builder/work HOME=/home/ci/.local/state/kici/builder",
                "ExecStartPre=/bin/mkdir -p /home/ci/.local/state/kici/builder",
                "WantedBy=default.target",
            ],
        );
        assert!(!unit.contains("User="), "{unit}");
        assert!(!unit.contains("MemoryDenyWriteExecute"), "{unit}");
        assert!(!unit.contains("SystemCallFilter"), "{unit}");
    }
}
