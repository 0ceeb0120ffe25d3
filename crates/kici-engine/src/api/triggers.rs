//! Starting workflows without a git event: `POST /api/v1/workflows/:workflow/dispatch`
//! (`kici dispatch`) and the schedules (`GET /api/v1/schedules`, `kici-admin schedules`).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::ids::RunId;
use crate::inputs::InputSchema;

/// A dispatch: which source and repository, the ref (default: the default branch), the
/// dispatch type a `dispatch({types})` trigger matches, and the inputs (strings are coerced).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DispatchRequest {
    /// Source id or name; may be left out when there is one source.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// `owner/name`, for a forge source whose clone URL is a template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repo: Option<String>,
    #[serde(default, rename = "ref", skip_serializing_if = "Option::is_none")]
    pub git_ref: Option<String>,
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub dispatch_type: Option<String>,
    #[serde(default)]
    pub inputs: Map<String, Value>,
}

/// The run a dispatch or "run now" started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Dispatched {
    pub run_id: RunId,
    pub workflow: String,
    #[serde(rename = "ref")]
    pub git_ref: String,
    pub sha: String,
}

/// One registered schedule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScheduleEntry {
    pub id: String,
    pub source: String,
    pub repo: String,
    pub workflow: String,
    pub cron: String,
    pub timezone: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inputs: Option<InputSchema>,
    pub enabled: bool,
    /// The default branch and the commit whose lock file registered it.
    #[serde(rename = "ref")]
    pub git_ref: String,
    pub sha: String,
    /// The last tick fired, or when it was registered (epoch ms).
    pub last_fired_at: i64,
    /// The next tick (epoch ms); `None` when disabled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_fire_at: Option<i64>,
    pub registered_at: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScheduleList {
    pub schedules: Vec<ScheduleEntry>,
}

/// What a dispatch of a workflow takes, for a "Run now" form.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DispatchForm {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub types: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inputs: Option<InputSchema>,
}

/// A workflow of a repository's default branch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkflowEntry {
    /// The source's name.
    pub source: String,
    pub repo: String,
    pub workflow: String,
    #[serde(rename = "ref")]
    pub git_ref: String,
    pub sha: String,
    /// Each trigger in one line (`push (branches: main)`).
    pub triggers: Vec<String>,
    /// Present when the workflow has a `dispatch()` trigger.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dispatch: Option<DispatchForm>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub schedules: Vec<ScheduleEntry>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkflowList {
    pub workflows: Vec<WorkflowEntry>,
}

/// An internal event and its delivery (`kici-admin event-dlq list`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventEntry {
    pub event_id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    /// `pending`, `delivered` or `dead`.
    pub status: String,
    pub attempts: i64,
    /// When a pending event's next attempt is due (epoch ms).
    pub next_attempt_at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// The runs it started.
    #[serde(default)]
    pub run_ids: Vec<RunId>,
    /// The event as workflows see it (`ctx.event`).
    pub event: Value,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventList {
    pub events: Vec<EventEntry>,
    /// How many events have the status asked for (all listed or not).
    pub total: i64,
}

/// `kici-admin event emit`: a custom event, as a step's `ctx.emit` makes one.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EmitRequest {
    pub name: String,
    #[serde(default)]
    pub payload: Map<String, Value>,
    /// `owner/name` the event comes from, for `kiciEvent({ source })`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_repo: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Emitted {
    pub event_id: String,
    pub run_ids: Vec<RunId>,
}
