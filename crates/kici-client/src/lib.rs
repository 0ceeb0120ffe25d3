//! The client side of KiCI's REST API (`docs/api.md`), shared by `kici` and `kici-admin`: the one
//! HTTP client and its errors ([`client`]), plain-text tables ([`table`], [`format`]) and the run
//! views both CLIs print ([`runs`]). The shapes it reads are `kici_engine::api`'s.
//!
//! Not here: command-line parsing and which endpoint a command calls; those stay in each CLI.

pub mod client;
pub mod format;
pub mod runs;
pub mod table;
