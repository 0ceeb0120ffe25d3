//! The views of runs: [`author`] is what `kici runs` prints (a compact table by branch, a tree,
//! step logs), [`operator`] what `kici-admin runs` prints (every field, job and step tables).
//! Both read `kici_engine::api`'s run shapes.

pub mod author;
#[cfg(test)]
mod fixtures;
pub mod operator;

use kici_engine::status::RunStatus;

/// A `--status` value of either CLI, with the valid names in its error.
pub fn parse_status(text: &str) -> Result<RunStatus, String> {
    text.trim().parse::<RunStatus>().map_err(|err| {
        let names: Vec<&str> = RunStatus::ALL.iter().map(|status| status.as_str()).collect();
        format!("{err} (expected one of {})", names.join(", "))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_filters_are_checked() {
        assert_eq!(parse_status(" running"), Ok(RunStatus::Running));
        assert!(
            parse_status("done")
                .unwrap_err()
                .starts_with("unknown status `done` (expected one of pending,")
        );
        assert_eq!(parse_status("failed"), Ok(RunStatus::Failed));
        assert_eq!(
            parse_status("broken"),
            Err(
                "unknown status `broken` (expected one of pending, running, cancelling, held, success, failed, cancelled)"
                    .into()
            )
        );
    }
}
