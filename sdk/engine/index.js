// @kici-dev/engine has no library API: the package is the runner (`runner.js`), which the host
// starts as a process and speaks to over fd 3 (sdk/PROTOCOL.md). This entry point exists because
// every package has one (and scaffolded tsconfig files map the package name to its types); it
// exports nothing, and importing it starts nothing.

export {};
