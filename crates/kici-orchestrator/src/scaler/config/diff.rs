//! What a reload changes: the running configuration compared with a newly loaded one,
//! scaler by scaler.

use super::ScalerConfig;

/// What a reload changes, scaler by scaler (by name).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReloadDiff {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    /// Same name and backend type, some setting changed (label sets, caps, warm pool, ...).
    pub changed: Vec<String>,
    /// Same name, other backend type: not applied by a reload (running agents are never
    /// touched; the old backend keeps serving until a restart).
    pub type_changed: Vec<String>,
}

impl ReloadDiff {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.changed.is_empty() && self.type_changed.is_empty()
    }
}

/// Compares the running configuration with a newly loaded (valid) one.
pub fn reload_diff(current: &ScalerConfig, next: &ScalerConfig) -> ReloadDiff {
    let mut diff = ReloadDiff::default();
    for new in &next.scalers {
        match current.scaler(&new.name) {
            None => diff.added.push(new.name.clone()),
            Some(old) if old.scaler_type() != new.scaler_type() => diff.type_changed.push(new.name.clone()),
            Some(old) if old != new => diff.changed.push(new.name.clone()),
            Some(_) => {}
        }
    }
    for old in &current.scalers {
        if next.scaler(&old.name).is_none() {
            diff.removed.push(old.name.clone());
        }
    }
    diff
}

#[cfg(test)]
mod tests {
    use super::super::testing::{bare_metal, one, valid};
    use super::*;

    #[test]
    fn reload_diff_by_name() {
        let current = valid(&format!(
            "version: 1\nscalers:\n  - {}\n  - {}\n  - {}\n",
            bare_metal("same", "a"),
            bare_metal("gone", "b"),
            bare_metal("edited", "c")
        ));
        let next = valid(&format!(
            "version: 1\nscalers:\n  - {}\n  - {}\n  - {}\n",
            bare_metal("same", "a"),
            bare_metal("edited", "c2"),
            "{name: new, type: container, maxAgents: 1, labelSets: [{labels: [n], image: i}]}"
        ));
        assert_eq!(
            reload_diff(&current, &next),
            ReloadDiff {
                added: vec!["new".into()],
                removed: vec!["gone".into()],
                changed: vec!["edited".into()],
                type_changed: vec![]
            }
        );
        let retyped = valid(&one(
            "{name: same, type: container, maxAgents: 1, labelSets: [{labels: [a], image: i}]}",
        ));
        assert_eq!(reload_diff(&current, &retyped).type_changed, ["same"]);
        assert!(reload_diff(&current, &current).is_empty());
    }
}
