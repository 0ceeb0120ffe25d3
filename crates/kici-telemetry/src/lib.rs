//! What every KiCI service shares: JSON-lines logging ([`logging`]), the `/health` body and the
//! `<service>.build.info` line ([`health`]), and the refusal of unknown `KICI_*` variables
//! ([`env`]).

pub mod env;
pub mod health;
pub mod logging;
