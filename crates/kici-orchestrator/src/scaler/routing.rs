//! Label routing and admission: which scaler and label set serve a queued job, and whether the
//! caps allow a spawn now. Pure functions over a validated [`ScalerConfig`]; the caller passes
//! the job's matchers and the agent counts, so nothing here does I/O or keeps state.
//!
//! Routing (operator spec §1.7): labels are compared lower-cased; a label set fits when every
//! `runsOn` matcher matches one of its labels or of the labels the spawned agent gets
//! automatically (`kici:agent:<type>`, `kici:scaler:<name>`, `kici:os:linux`), and no
//! `excludeLabels` matcher matches any of them; a scaler with `mandatoryLabels` serves only
//! jobs that require each of them with an exact matcher. The smallest fitting label set wins,
//! ties going to configuration order; a job without `runsOn` goes to the first scaler without
//! mandatory labels. Admission then applies `globalMaxAgents` and the scaler's `maxAgents`,
//! both counting agents still spawning. There is no fallback to a larger label set when the
//! chosen scaler is full: the job stays queued.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use kici_engine::labels::{LabelMatcher, RESERVED_PREFIX, labels_fit};

use super::config::{ScalerConfig, ScalerEntry, ScalerType};

/// Warned when no scaler serves a job's labels (spec §2.1).
pub(crate) use kici_engine::failure::NO_BACKEND_MESSAGE;

/// The labels an agent spawned by scaler `scaler_name` of type `kind` gets on top of its label
/// set: `kici:agent:<type>`, `kici:os:linux` and `kici:scaler:<name>` (lower-cased).
pub(crate) fn auto_labels(kind: ScalerType, scaler_name: &str) -> [String; 3] {
    [
        format!("{RESERVED_PREFIX}agent:{}", kind.as_str()),
        format!("{RESERVED_PREFIX}os:linux"),
        format!("{RESERVED_PREFIX}scaler:{}", scaler_name.to_lowercase()),
    ]
}

impl ScalerEntry {
    /// See [`auto_labels`].
    pub(crate) fn auto_labels(&self) -> [String; 3] {
        auto_labels(self.scaler_type(), &self.name)
    }

    /// The labels routing assumes an agent spawned for label set `label_set_index` has: the
    /// set's labels plus [`auto_labels`], sorted. (The agent adds `kici:arch:*` and
    /// `kici:host:*` itself at registration.) Only the tests read it: routing itself goes by
    /// label set.
    #[cfg(test)]
    pub(crate) fn agent_labels(&self, label_set_index: usize) -> Vec<String> {
        let mut labels: Vec<String> = self
            .label_sets
            .get(label_set_index)
            .map(|set| set.labels.clone())
            .unwrap_or_default();
        labels.extend(self.auto_labels());
        labels.sort();
        labels.dedup();
        labels
    }
}

/// Where a job would be spawned.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Route<'a> {
    pub(crate) scaler: &'a ScalerEntry,
    pub(crate) label_set_index: usize,
}

impl<'a> Route<'a> {
    #[cfg(test)]
    pub(crate) fn label_set(&self) -> &'a super::config::LabelSet {
        &self.scaler.label_sets[self.label_set_index]
    }
}

/// Exact matchers lower-cased and trimmed, like label-set labels; regexes as written.
fn normalize_matchers(matchers: &[LabelMatcher]) -> Vec<LabelMatcher> {
    matchers
        .iter()
        .map(|matcher| match matcher {
            LabelMatcher::Exact { value } => LabelMatcher::Exact {
                value: value.trim().to_lowercase(),
            },
            regex => regex.clone(),
        })
        .collect()
}

/// The scaler and label set that serve a job with these `runsOn` / `excludeLabels` matchers,
/// or `None` when no scaler does. A matcher that does not compile matches nothing (lock files
/// are validated at load, so this does not happen in practice).
pub fn route<'a>(
    config: &'a ScalerConfig,
    runs_on: &[LabelMatcher],
    exclude_labels: &[LabelMatcher],
) -> Option<Route<'a>> {
    let required = normalize_matchers(runs_on);
    let excluded = normalize_matchers(exclude_labels);
    let required_exact: BTreeSet<&str> = required
        .iter()
        .filter_map(|matcher| match matcher {
            LabelMatcher::Exact { value } => Some(value.as_str()),
            LabelMatcher::Regex { .. } => None,
        })
        .collect();
    let mut best: Option<(usize, Route<'a>)> = None;
    for scaler in &config.scalers {
        let gated_out = scaler
            .mandatory_labels
            .iter()
            .any(|label| !required_exact.contains(label.as_str()));
        if gated_out {
            continue;
        }
        let mut auto = scaler.auto_labels().to_vec();
        // Its agents advertise the builder role themselves, unless `roles` leaves it out.
        if scaler.roles.includes(super::config::AgentRole::Builder) {
            auto.push(kici_engine::labels::BUILDER_LABEL.to_string());
        }
        for (label_set_index, set) in scaler.label_sets.iter().enumerate() {
            let candidate: Vec<String> = set.labels.iter().chain(auto.iter()).cloned().collect();
            if !labels_fit(&required, &excluded, &candidate).unwrap_or(false) {
                continue;
            }
            let size = set.labels.len();
            if best.as_ref().is_none_or(|(best_size, _)| size < *best_size) {
                best = Some((
                    size,
                    Route {
                        scaler,
                        label_set_index,
                    },
                ));
            }
        }
        // Without `runsOn` the first scaler that can serve the job takes it.
        if required.is_empty() && best.is_some() {
            break;
        }
    }
    best.map(|(_, route)| route)
}

/// Scaler-managed agents that are live or still spawning (warm ones included).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct AgentCounts {
    /// Across every scaler, for `globalMaxAgents`.
    pub(crate) total: u32,
    /// Per scaler name, for `maxAgents`; a missing name counts 0.
    pub(crate) by_scaler: BTreeMap<String, u32>,
}

impl AgentCounts {
    pub(crate) fn of(&self, scaler: &str) -> u32 {
        self.by_scaler.get(scaler).copied().unwrap_or(0)
    }
}

/// Which cap refused a spawn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CapacityReason {
    GlobalMaxAgents { limit: u32, current: u32 },
    ScalerMaxAgents { scaler: String, limit: u32, current: u32 },
}

impl fmt::Display for CapacityReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CapacityReason::GlobalMaxAgents { limit, current } => write!(
                f,
                "globalMaxAgents reached: {current} of {limit} scaler agents are live or spawning"
            ),
            CapacityReason::ScalerMaxAgents { scaler, limit, current } => write!(
                f,
                "scaler \"{scaler}\" reached maxAgents: {current} of {limit} agents are live or spawning"
            ),
        }
    }
}

/// The scaler's answer for one queued job.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Admission<'a> {
    /// Start an agent for label set `label_set_index` of `scaler`.
    Spawn {
        scaler: &'a ScalerEntry,
        label_set_index: usize,
    },
    /// A scaler serves the job but a cap is reached; the job stays queued.
    AtCapacity { reason: CapacityReason },
    /// No scaler serves the job's labels.
    NoBackend,
}

/// Which cap, if any, refuses another agent of `scaler` now: `globalMaxAgents` first, then
/// the scaler's `maxAgents`.
pub(crate) fn caps_refuse(config: &ScalerConfig, scaler: &ScalerEntry, counts: &AgentCounts) -> Option<CapacityReason> {
    if counts.total >= config.global_max_agents {
        return Some(CapacityReason::GlobalMaxAgents {
            limit: config.global_max_agents,
            current: counts.total,
        });
    }
    let current = counts.of(&scaler.name);
    (current >= scaler.max_agents).then(|| CapacityReason::ScalerMaxAgents {
        scaler: scaler.name.clone(),
        limit: scaler.max_agents,
        current,
    })
}

/// Routes the job, then applies `globalMaxAgents` and the chosen scaler's `maxAgents` to
/// `counts` (the caller holds its spawn lock while it calls this and records the spawn).
pub(crate) fn admit<'a>(
    config: &'a ScalerConfig,
    runs_on: &[LabelMatcher],
    exclude_labels: &[LabelMatcher],
    counts: &AgentCounts,
) -> Admission<'a> {
    let Some(route) = route(config, runs_on, exclude_labels) else {
        return Admission::NoBackend;
    };
    if let Some(reason) = caps_refuse(config, route.scaler, counts) {
        return Admission::AtCapacity { reason };
    }
    Admission::Spawn {
        scaler: route.scaler,
        label_set_index: route.label_set_index,
    }
}

#[cfg(test)]
mod tests {
    use kici_engine::labels::LabelSelector;

    use super::*;
    use crate::scaler::config::from_yaml_str;

    const CONFIG: &str = r#"
version: 1
globalMaxAgents: 5
scalers:
  - name: containers
    type: container
    maxAgents: 3
    labelSets:
      - {labels: [linux, docker, large], image: big}
      - {labels: [linux, docker], image: small}
      - {labels: [linux, node-20], image: node}
  - name: Metal
    type: bare-metal
    maxAgents: 2
    labelSets:
      - {labels: [linux], binaryPath: /bin/agent}
      - {labels: [linux, docker, fast], binaryPath: /bin/agent}
  - name: gpu
    type: bare-metal
    maxAgents: 1
    mandatoryLabels: [gpu]
    labelSets:
      - {labels: [gpu, linux, cuda], binaryPath: /bin/agent}
"#;

    fn config(yaml: &str) -> ScalerConfig {
        from_yaml_str(yaml, "scalers.yaml").unwrap()
    }

    /// `linux` = exact, `/src/flags` = regex, `glob:pattern` = glob.
    fn matcher(text: &str) -> LabelMatcher {
        if let Some(pattern) = text.strip_prefix("glob:") {
            return LabelSelector::Glob {
                pattern: pattern.to_string(),
            }
            .to_matcher()
            .unwrap();
        }
        if let Some(rest) = text.strip_prefix('/') {
            let (source, flags) = rest.rsplit_once('/').unwrap();
            return LabelMatcher::Regex {
                source: source.to_string(),
                flags: flags.to_string(),
            };
        }
        LabelMatcher::exact(text)
    }

    fn matchers(texts: &[&str]) -> Vec<LabelMatcher> {
        texts.iter().map(|t| matcher(t)).collect()
    }

    fn routed(config: &ScalerConfig, runs_on: &[&str], exclude: &[&str]) -> Option<(String, usize)> {
        route(config, &matchers(runs_on), &matchers(exclude)).map(|r| (r.scaler.name.clone(), r.label_set_index))
    }

    #[test]
    fn routing() {
        let config = config(CONFIG);
        type Case<'a> = (&'a [&'a str], &'a [&'a str], Option<(&'a str, usize)>);
        let cases: &[Case] = &[
            // The smallest fitting label set wins.
            (&["linux"], &[], Some(("Metal", 0))),
            (&["docker"], &[], Some(("containers", 1))),
            (&["linux", "docker"], &[], Some(("containers", 1))),
            (&["large"], &[], Some(("containers", 0))),
            (&["fast"], &[], Some(("Metal", 1))),
            // Labels compare lower-cased.
            (&["LINUX", " Docker "], &[], Some(("containers", 1))),
            // Regex and glob matchers.
            (&["glob:node-*"], &[], Some(("containers", 2))),
            (&["/^NODE-\\d+$/i"], &[], Some(("containers", 2))),
            (&["/^lin/"], &[], Some(("Metal", 0))),
            (&["/^doc/", "/^fa/"], &[], Some(("Metal", 1))),
            // Automatic labels: type, scaler (lower-cased), os.
            (&["kici:agent:bare-metal"], &[], Some(("Metal", 0))),
            (&["kici:scaler:metal", "docker"], &[], Some(("Metal", 1))),
            // Ties go to configuration order.
            (&["kici:scaler:containers"], &[], Some(("containers", 1))),
            (&["kici:os:linux"], &[], Some(("Metal", 0))),
            (&["docker", "kici:os:linux"], &[], Some(("containers", 1))),
            // Mandatory labels: required with an exact matcher, or the scaler is skipped.
            (&["gpu"], &[], Some(("gpu", 0))),
            (&["GPU", "cuda"], &[], Some(("gpu", 0))),
            (&["/^gpu$/"], &[], None),
            (&["glob:gp*"], &[], None),
            (&["cuda"], &[], None),
            // Exclusion vetoes label sets that contain a matching label (automatic ones too).
            (&["linux", "docker"], &["kici:scaler:containers"], Some(("Metal", 1))),
            (&["docker"], &["glob:fa*", "small"], Some(("containers", 1))),
            (&["linux"], &["kici:agent:bare-metal"], Some(("containers", 1))),
            (
                &["linux"],
                &["kici:agent:bare-metal", "docker"],
                Some(("containers", 2)),
            ),
            (&["docker"], &["/^DOCK/i"], None),
            (&["linux"], &["linux"], None),
            // Nothing serves it.
            (&["arm64"], &[], None),
            (&["kici:arch:arm64"], &[], None),
            (&["linux", "windows"], &[], None),
            // No runsOn: the first scaler without mandatory labels, its smallest set.
            (&[], &[], Some(("containers", 1))),
            (&[], &["kici:agent:container"], Some(("Metal", 0))),
            (&[], &["linux"], None),
        ];
        for (runs_on, exclude, expected) in cases {
            let expected = expected.map(|(name, index)| (name.to_string(), index));
            assert_eq!(
                routed(&config, runs_on, exclude),
                expected,
                "runsOn {runs_on:?} exclude {exclude:?}"
            );
        }
    }

    #[test]
    fn empty_runs_on_skips_gated_scalers() {
        let config = config(
            "version: 1\nscalers:\n  - {name: gpu, type: bare-metal, maxAgents: 1, mandatoryLabels: [gpu], labelSets: [{labels: [gpu], binaryPath: /a}]}\n  - {name: any, type: container, maxAgents: 1, labelSets: [{labels: [linux, big], image: i}, {labels: [linux], image: i}]}\n",
        );
        assert_eq!(routed(&config, &[], &[]), Some(("any".to_string(), 1)));
        assert_eq!(routed(&ScalerConfig::default(), &[], &[]), None);
    }

    #[test]
    fn a_matcher_that_does_not_compile_matches_nothing() {
        let config = config(CONFIG);
        assert_eq!(routed(&config, &["/(/"], &[]), None);
        assert_eq!(routed(&config, &["linux"], &["/(/"]), None);
    }

    #[test]
    fn agent_labels_are_the_set_plus_automatic_labels() {
        let config = config(CONFIG);
        let metal = config.scaler("Metal").unwrap();
        assert_eq!(
            metal.agent_labels(1),
            [
                "docker",
                "fast",
                "kici:agent:bare-metal",
                "kici:os:linux",
                "kici:scaler:metal",
                "linux"
            ]
        );
        let containers = config.scaler("containers").unwrap();
        assert_eq!(
            containers.auto_labels(),
            ["kici:agent:container", "kici:os:linux", "kici:scaler:containers"]
        );
        let route = route(&config, &matchers(&["node-20"]), &[]).unwrap();
        assert_eq!(route.label_set().labels, ["linux", "node-20"]);
    }

    fn counts(total: u32, by_scaler: &[(&str, u32)]) -> AgentCounts {
        AgentCounts {
            total,
            by_scaler: by_scaler.iter().map(|(n, c)| (n.to_string(), *c)).collect(),
        }
    }

    #[test]
    fn admission_caps() {
        let config = config(CONFIG);
        let linux = matchers(&["linux"]);
        let spawn = |admission: Admission<'_>| match admission {
            Admission::Spawn {
                scaler,
                label_set_index,
            } => Some((scaler.name.clone(), label_set_index)),
            _ => None,
        };
        assert_eq!(
            spawn(admit(&config, &linux, &[], &AgentCounts::default())),
            Some(("Metal".to_string(), 0))
        );
        // The other scalers' agents count only toward the global cap.
        assert_eq!(
            spawn(admit(
                &config,
                &linux,
                &[],
                &counts(4, &[("containers", 3), ("Metal", 1)])
            )),
            Some(("Metal".to_string(), 0))
        );
        // maxAgents counts live and spawning agents alike (the caller adds them up).
        assert_eq!(
            admit(&config, &linux, &[], &counts(2, &[("Metal", 2)])),
            Admission::AtCapacity {
                reason: CapacityReason::ScalerMaxAgents {
                    scaler: "Metal".into(),
                    limit: 2,
                    current: 2
                }
            }
        );
        // globalMaxAgents first.
        assert_eq!(
            admit(&config, &linux, &[], &counts(5, &[("Metal", 2)])),
            Admission::AtCapacity {
                reason: CapacityReason::GlobalMaxAgents { limit: 5, current: 5 }
            }
        );
        // A full scaler does not send the job to a larger label set elsewhere.
        assert!(matches!(
            admit(&config, &matchers(&["docker"]), &[], &counts(3, &[("containers", 3)])),
            Admission::AtCapacity { .. }
        ));
        assert_eq!(
            admit(&config, &matchers(&["arm64"]), &[], &AgentCounts::default()),
            Admission::NoBackend
        );
        assert_eq!(
            admit(&ScalerConfig::default(), &[], &[], &AgentCounts::default()),
            Admission::NoBackend
        );
    }

    #[test]
    fn capacity_reasons_read_well() {
        assert_eq!(
            CapacityReason::GlobalMaxAgents { limit: 2, current: 2 }.to_string(),
            "globalMaxAgents reached: 2 of 2 scaler agents are live or spawning"
        );
        assert_eq!(
            CapacityReason::ScalerMaxAgents {
                scaler: "bm".into(),
                limit: 4,
                current: 5
            }
            .to_string(),
            "scaler \"bm\" reached maxAgents: 5 of 4 agents are live or spawning"
        );
    }
}
