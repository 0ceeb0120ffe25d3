//! Which dependency builds run now: one per lock file, so identical builds coalesce (the
//! dispatcher holds the others back; they then restore what the first stored).

use std::collections::HashMap;
use std::sync::Mutex;

use kici_engine::ids::JobId;

/// The dependency builds running now, by lock-file hash.
#[derive(Debug, Default)]
pub struct BuildSlots {
    /// Lock-file hash to the build job that holds it.
    running: Mutex<HashMap<String, JobId>>,
}

impl BuildSlots {
    /// Whether `job` may build `lockfile_hash` now: no other build of it is `active` (queued
    /// or running). A holder that is neither (cancelled, expired) gives way.
    pub fn try_start(&self, lockfile_hash: &str, job: &JobId, active: impl Fn(&JobId) -> bool) -> bool {
        let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        let holder = running.entry(lockfile_hash.to_string()).or_insert_with(|| job.clone());
        if holder != job && !active(holder) {
            *holder = job.clone();
        }
        holder == job
    }

    /// Whether another build of `lockfile_hash` than `job` holds the slot.
    pub fn held_by_other(&self, lockfile_hash: &str, job: &JobId) -> bool {
        let running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        running.get(lockfile_hash).is_some_and(|holder| holder != job)
    }

    /// `job` ended: the next build of its lock file may start.
    pub fn finish(&self, job: &JobId) {
        let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        running.retain(|_, holder| holder != job);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_build_per_lock_file_runs_at_a_time() {
        let builds = BuildSlots::default();
        let (first, second) = (JobId::from("b1"), JobId::from("b2"));
        assert!(builds.try_start("h", &first, |_| true));
        assert!(!builds.try_start("h", &second, |_| true));
        assert!(builds.try_start("other", &second, |_| true));
        builds.finish(&first);
        assert!(builds.try_start("h", &second, |_| true));
        // A holder that is no longer queued or running gives way.
        assert!(builds.try_start("h", &first, |_| false));
    }
}
