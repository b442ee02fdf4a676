//! What the modules share, as Ansible's `module_utils` is for its modules: file attributes and
//! atomic writes (`files`), running the system's own tools (`syscmd`), and the offline cache's
//! root, download client and manifest fragments (`offline_cache`). Nothing here is a module.

pub mod files;
pub mod offline_cache;
pub mod syscmd;
