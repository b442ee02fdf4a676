//! Ansible's Jinja tests on minijinja (`is defined`, `is version`, `is succeeded`, ...).

use minijinja::Environment;

/// Adds Ansible's tests to the environment.
pub fn register(_env: &mut Environment<'static>) {}
