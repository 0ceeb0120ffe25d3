// Types of @kici-dev/engine: none. The package is the runner (`runner.js`), started by the host
// and spoken to over fd 3 (see sdk/PROTOCOL.md); `index.js` exports nothing.

export {};
