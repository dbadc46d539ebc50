//! The host side of dynamic loading: open a `.so`, check its [`AbiDecl`] field by field,
//! then call its entry with a fresh [`Registrar`]. Libraries are never unloaded: hooks,
//! vtables and threads of a plugin may live as long as the process.
//!
//! Opening a library runs its initializers (for a hooks-api plugin: `inventory` linking its
//! declarations into its own list) — that happens before any check, as with any `dlopen`,
//! and no check can make arbitrary initialisers safe: [`read_abi`] (like
//! [`Registry::load_dynamic`](crate::Registry::load_dynamic)) is an `unsafe fn` whose
//! caller vouches for the file.
//!
//! The layer above [`crate::abi`] (the data it reads) and [`crate::entry`] (the other side
//! of the call). What it does not do: merge what the plugin registered (that is
//! [`crate::registry`], the layer above).

#![allow(unsafe_code)]

use std::ffi::c_void;
use std::path::Path;
use std::sync::Mutex;

use libloading::{Library, Symbol};

use crate::abi::{
    AbiDecl, EntryFailure, HostLog, RawStr, ABI_SYMBOL, ABI_VERSION, ENTRY_FAILED, ENTRY_OK,
    ENTRY_SYMBOL, HOOKS_API_VERSION, RUSTC_VERSION, TARGET,
};
use crate::entry::LAYOUT;
use crate::error::LoadError;
use crate::registrar::Registrar;

/// Every library opened, kept for the life of the process.
static LIBRARIES: Mutex<Vec<Library>> = Mutex::new(Vec::new());

type AbiFn = unsafe extern "C" fn() -> *const AbiDecl;
type EntryFn = unsafe extern "C" fn(*mut c_void, RawStr, *mut c_void) -> i32;

/// The ABI facts of a library (or of this host), owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AbiFacts {
    /// The entry protocol version.
    pub abi_version: u32,
    /// The hooks-api version.
    pub hooks_api_version: String,
    /// The `rustc --version` string.
    pub rustc_version: String,
    /// The target triple.
    pub target: String,
    /// The layout fingerprint.
    pub layout: u64,
}

impl AbiFacts {
    /// This host's facts.
    pub fn host() -> Self {
        AbiFacts {
            abi_version: ABI_VERSION,
            hooks_api_version: HOOKS_API_VERSION.to_owned(),
            rustc_version: RUSTC_VERSION.to_owned(),
            target: TARGET.to_owned(),
            layout: LAYOUT,
        }
    }

    /// Compares with the host, field by field; the first difference is the error.
    pub fn check(&self, path: &Path) -> Result<(), LoadError> {
        let host = AbiFacts::host();
        let mismatch = |field: &'static str, expected: String, found: String| {
            Err(LoadError::AbiMismatch {
                path: path.to_owned(),
                field,
                expected,
                found,
            })
        };
        if self.abi_version != host.abi_version {
            return mismatch(
                "abi_version",
                host.abi_version.to_string(),
                self.abi_version.to_string(),
            );
        }
        if self.hooks_api_version != host.hooks_api_version {
            return mismatch(
                "hooks_api_version",
                host.hooks_api_version,
                self.hooks_api_version.clone(),
            );
        }
        if self.rustc_version != host.rustc_version {
            return mismatch(
                "rustc_version",
                host.rustc_version,
                self.rustc_version.clone(),
            );
        }
        if self.target != host.target {
            return mismatch("target", host.target, self.target.clone());
        }
        if self.layout != host.layout {
            return mismatch(
                "layout",
                format!("{:016x}", host.layout),
                format!("{:016x}", self.layout),
            );
        }
        Ok(())
    }
}

/// Opens `path` (kept open forever) and returns its library handle's symbols' owner index.
///
/// # Safety
///
/// Opening the library runs its initialisers: `path` must be a library whose initialisers
/// are sound to run in this process (a hooks-api plugin's only link `inventory` nodes).
unsafe fn open(path: &Path) -> Result<usize, LoadError> {
    if !path.exists() {
        return Err(LoadError::FileMissing {
            path: path.to_owned(),
        });
    }
    // SAFETY: opening a library runs its initializers, which our caller vouched for (see
    // above). The handle is kept in LIBRARIES and never closed, so no symbol taken from it
    // can dangle.
    let library = unsafe { Library::new(path) }.map_err(|e| LoadError::Open {
        path: path.to_owned(),
        reason: e.to_string(),
    })?;
    let mut libraries = LIBRARIES.lock().unwrap_or_else(|e| e.into_inner());
    libraries.push(library);
    Ok(libraries.len() - 1)
}

/// Runs `f` with the library at `index`.
fn with_library<R>(index: usize, f: impl FnOnce(&Library) -> R) -> R {
    let libraries = LIBRARIES.lock().unwrap_or_else(|e| e.into_inner());
    f(&libraries[index])
}

/// Reads the [`AbiDecl`] of the library at `index`.
fn read_decl(index: usize, path: &Path) -> Result<AbiFacts, LoadError> {
    with_library(index, |library| {
        // SAFETY: the symbol is looked up with the type every hooks-api version exports it
        // with: `extern "C" fn() -> *const AbiDecl`.
        let abi: Symbol<'_, AbiFn> =
            unsafe { library.get(ABI_SYMBOL.as_bytes()) }.map_err(|_| LoadError::NotAPlugin {
                path: path.to_owned(),
                symbol: ABI_SYMBOL,
            })?;
        // SAFETY: a C-ABI function without arguments, returning a pointer to a static.
        let decl = unsafe { abi() };
        if decl.is_null() {
            return Err(LoadError::NotAPlugin {
                path: path.to_owned(),
                symbol: ABI_SYMBOL,
            });
        }
        // SAFETY: `abi_version` is the first field of every AbiDecl version, a u32 at offset
        // 0 of a static the library keeps alive (it is never unloaded).
        let abi_version = unsafe { (*decl).abi_version };
        let mut facts = AbiFacts {
            abi_version,
            hooks_api_version: String::new(),
            rustc_version: String::new(),
            target: String::new(),
            layout: 0,
        };
        if abi_version != ABI_VERSION {
            // Other fields may have another layout: do not read them.
            return Ok(facts);
        }
        // SAFETY: same ABI version, so the struct has this definition (integers and
        // pointer+length strings, repr(C)); the strings point at the library's statics,
        // which stay mapped since the library is never unloaded.
        unsafe {
            let d = &*decl;
            let text = |s: &RawStr| {
                s.to_owned_checked()
                    .unwrap_or_else(|| "<invalid>".to_owned())
            };
            facts.hooks_api_version = text(&d.hooks_api_version);
            facts.rustc_version = text(&d.rustc_version);
            facts.target = text(&d.target);
            facts.layout = d.layout;
        }
        Ok(facts)
    })
}

/// Opens `path` and returns its ABI facts without checking or initialising anything
/// (what `impulse plugin check` prints first). The library stays loaded.
///
/// # Safety
///
/// Opening a library runs its initialisers before anything can be checked: `path` must be
/// a library trusted to be sound to load into this process (an Impulse plugin the operator
/// chose, or any library whose initialisers do no harm). Nothing of it beyond its
/// [`AbiDecl`] is called.
pub unsafe fn read_abi(path: &Path) -> Result<AbiFacts, LoadError> {
    // SAFETY: our caller vouches for the file's initialisers.
    let index = unsafe { open(path) }?;
    read_decl(index, path)
}

/// Opens `path`, checks its ABI, and runs its entry with `registrar` (host side).
///
/// # Safety
///
/// As for [`read_abi`]: `path` must be sound to load into this process.
pub(crate) unsafe fn load_into(
    path: &Path,
    registrar: &mut Registrar,
    configs: &toml::Table,
) -> Result<(), LoadError> {
    // SAFETY: our caller vouches for the file's initialisers.
    let index = unsafe { open(path) }?;
    read_decl(index, path)?.check(path)?;
    let entry: EntryFn = with_library(index, |library| {
        // SAFETY: the ABI check passed, so the entry has the type `export_plugin!` gives it.
        unsafe { library.get::<EntryFn>(ENTRY_SYMBOL.as_bytes()) }
            .map(|symbol| *symbol)
            .map_err(|_| LoadError::NotAPlugin {
                path: path.to_owned(),
                symbol: ENTRY_SYMBOL,
            })
    })?;
    let text = toml::to_string(configs).unwrap_or_default();
    let mut failure: Option<EntryFailure> = None;
    registrar.host_log = Some(HostLog::current());
    // SAFETY: the ABI guard passed (same ABI version, hooks-api version, rustc, target and
    // layouts), so the plugin's `Registrar`, `EntryFailure` and `RawStr` are ours. The
    // pointers are unique and live for the call; the function pointer stays valid because
    // the library is never unloaded. The entry catches its own panics.
    let code = unsafe {
        entry(
            std::ptr::from_mut(registrar).cast::<c_void>(),
            RawStr::new(&text),
            std::ptr::from_mut(&mut failure).cast::<c_void>(),
        )
    };
    match (code, failure) {
        (ENTRY_OK, _) => Ok(()),
        (_, Some(failure)) => Err(entry_error(failure, path)),
        (code, None) => Err(LoadError::EntryPanicked {
            plugin: path.display().to_string(),
            message: format!("entry returned {code} without a reason (expected {ENTRY_FAILED})"),
        }),
    }
}

/// The operator-facing error for an entry or static-init failure.
pub(crate) fn entry_error(failure: EntryFailure, path: &Path) -> LoadError {
    match failure {
        EntryFailure::Panicked { plugin, message } => LoadError::EntryPanicked {
            plugin: if plugin == "<entry>" {
                path.display().to_string()
            } else {
                plugin
            },
            message,
        },
        EntryFailure::InitFailed { plugin, reason } => LoadError::InitFailed { plugin, reason },
        EntryFailure::Empty => LoadError::Empty {
            path: path.to_owned(),
        },
    }
}
