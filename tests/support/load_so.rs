//! Loading a plugin library in a test: the one `unsafe` call every `.so` test makes, with the
//! reason it is sound there. Included with `#[path]` by the tests that load `.so` files (the
//! root `tests/plugin_*.rs`, `hooks-api/tests/dynamic.rs` and `plugins/*/tests/`).

/// Loads the plugin library at `path` into `registry`.
pub fn load_so(
    registry: &mut hooks_api::Registry,
    path: impl AsRef<std::path::Path>,
    configs: &hooks_api::toml::Table,
) -> Result<Vec<String>, hooks_api::LoadError> {
    // SAFETY: the tests load only libraries built from this workspace (the plugin under
    // test) or the system's own (libc, to check the refusal), whose initialisers are sound.
    unsafe { registry.load_dynamic(path, configs) }
}
