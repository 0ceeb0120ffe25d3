//! The host environment variables KiCI passes on to the processes it starts (Node runners,
//! bare-metal agents). Nothing else of the parent's environment is inherited, so secrets in
//! it never reach user code.

/// Names inherited from the host; every other variable is set explicitly. The trust store and
/// proxy variables are the host's network setup: without them a package manager behind a
/// corporate proxy or a TLS-inspecting gateway cannot reach its registry.
pub const INHERITED: [&str; 19] = [
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
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "NODE_EXTRA_CA_CERTS",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
];
