//! The Users page (owners): every stored user with their role and since when, each removable
//! (their token stops working and their sessions end at once). The bootstrap owner
//! (`KICI_PLATFORM_ADMIN_TOKEN`) is not a stored user and is not listed.

use kici_engine::api::admin::UserEntry;

use super::{Viewer, escape, layout};

pub fn users_page(users: &[UserEntry], viewer: &Viewer) -> String {
    let rows: String = if users.is_empty() {
        r#"<tr><td colspan="4" class="empty">No users yet: <code>kici-admin user create --name NAME --role member</code> makes one.</td></tr>"#.to_string()
    } else {
        users
            .iter()
            .map(|user| {
                format!(
                    r#"<tr data-user="{name}"><td>{name}</td><td>{role}</td><td><time data-ms="{created}"></time></td><td><button type="button" class="danger" data-remove-user="{name}">Remove</button></td></tr>"#,
                    name = escape(&user.name),
                    role = escape(&user.role),
                    created = user.created_at,
                )
            })
            .collect()
    };
    let body = format!(
        r#"<section class="users">
<h1>Users</h1>
<p class="hint">Owners read and act (cancel, re-run, approve); members only read. Create one with <code>kici-admin user create</code>: its token is shown once.</p>
<table class="users-list">
<thead><tr><th>Name</th><th>Role</th><th>Created</th><th><span class="sr-only">Actions</span></th></tr></thead>
<tbody>{rows}</tbody>
</table>
</section>"#
    );
    layout("Users", Some(viewer), &body)
}
