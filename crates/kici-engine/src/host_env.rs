//! The host environment variables KiCI passes on to the processes it starts (Node runners,
//! bare-metal agents). Nothing else of the parent's environment is inherited, so secrets in
//! it never reach user code.

/// Names inherited from the host; every other variable is set explicitly.
pub const INHERITED: [&str; 10] = [
    "PATH",
    "HOME",
    "USER",
    "SHELL",
    "LANG",
    "LC_ALL",
    "TERM",
    "TMPDIR",
    "NODE_PATH",
    "TZ",
];
