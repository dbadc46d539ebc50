//! The AUTH hook: [`Config`] and [`Authenticator`].

use std::path::PathBuf;
use std::sync::Arc;

use hooks_api::smtp_proto::sasl::Secret;
use hooks_api::smtp_proto::Mechanism;
use hooks_api::{AuthCtx, Verdict};

use crate::pool::Pool;
use crate::users::UserFile;

/// `[plugins.auth-file]`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The user file (`user:hash` lines).
    pub file: PathBuf,
    /// A realm: an authentication identity `user@realm` (realm compared ignoring ASCII
    /// case) is looked up as `user`. Other identities are looked up as given.
    #[serde(default)]
    pub realm: Option<String>,
    /// Gone: whether AUTH may run without TLS is the server's `[auth] plaintext` (the
    /// server answers `538 5.7.11` before this plugin is asked). Still recognised, so that a
    /// configuration that sets it is refused with a pointer to the new key.
    #[serde(default)]
    pub allow_plaintext_without_tls: Option<bool>,
    /// Verification threads (default 2).
    #[serde(default = "default_workers")]
    pub workers: usize,
    /// Verifications that may wait for a thread before AUTH is answered `454 4.7.0`
    /// (default 64).
    #[serde(default = "default_queue")]
    pub queue: usize,
}

fn default_workers() -> usize {
    2
}

fn default_queue() -> usize {
    64
}

/// `535 5.7.8 Authentication credentials invalid` (RFC 4954 §6): wrong password, unknown
/// user, or an authorization identity other than the authentication identity.
pub fn invalid_credentials() -> Verdict {
    Verdict::reject(535, "5.7.8", "Authentication credentials invalid")
}

/// Why `allow_plaintext_without_tls` is refused.
pub const PLAINTEXT_MOVED: &str = "[plugins.auth-file] allow_plaintext_without_tls is gone: \
     AUTH without TLS is `plaintext = true` in the server's [auth] table";

/// `538 5.7.11 Encryption required for requested authentication mechanism` (RFC 4954 §6).
pub fn encryption_required() -> Verdict {
    Verdict::reject(
        538,
        "5.7.11",
        "Encryption required for requested authentication mechanism",
    )
}

/// `454 4.7.0 Temporary authentication failure` (RFC 4954 §6): every verification thread
/// is busy and the queue is full.
pub fn temporary_failure() -> Verdict {
    Verdict::temp_fail(454, "4.7.0", "Temporary authentication failure")
}

/// Verifies AUTH credentials against a [`UserFile`].
#[derive(Debug)]
pub struct Authenticator {
    users: Arc<UserFile>,
    realm: Option<String>,
    pool: Pool,
}

impl Authenticator {
    /// Opens the user file named in `config`; an unreadable or invalid file is an error.
    pub fn new(config: &Config) -> Result<Authenticator, String> {
        if config.allow_plaintext_without_tls.is_some() {
            return Err(PLAINTEXT_MOVED.to_owned());
        }
        Ok(Authenticator {
            users: Arc::new(UserFile::open(&config.file)?),
            realm: config.realm.clone(),
            pool: Pool::new(config.workers, config.queue),
        })
    }

    /// The user to look up for `authcid`, or `None` when `authzid` asks for another
    /// identity (proxy authorization is not supported).
    pub fn user_for<'a>(&self, authcid: &'a str, authzid: &str) -> Option<&'a str> {
        if !authzid.is_empty() && authzid != authcid {
            return None;
        }
        if let Some(realm) = &self.realm {
            if let Some((user, r)) = authcid.rsplit_once('@') {
                if r.eq_ignore_ascii_case(realm) {
                    return Some(user);
                }
            }
        }
        Some(authcid)
    }

    /// The AUTH hook. PLAIN and LOGIN only (other mechanisms: `Continue`, for another
    /// plugin to decide). Whether TLS is needed is the server's decision (`[auth]
    /// plaintext`), made before the hook runs. Goes pending and verifies on a worker thread when the host can
    /// wait, else verifies inline.
    pub fn on_auth(&self, ctx: &mut AuthCtx<'_>) -> Verdict {
        if !matches!(ctx.mechanism, Mechanism::Plain | Mechanism::Login) {
            return Verdict::Continue;
        }
        let peer = ctx.session().peer;
        let Some(user) = self.user_for(ctx.authcid, ctx.authzid) else {
            hooks_api::log::info!(
                "auth-file: {} asked to act as another identity from {peer}; refused",
                ctx.authcid
            );
            return invalid_credentials();
        };
        let user = user.to_owned();
        if !ctx.can_pend() {
            return decide(&self.users, &user, ctx.password, peer);
        }
        let Some(slot) = self.pool.reserve() else {
            hooks_api::log::warn!("auth-file: every verification thread is busy; answering 454");
            return temporary_failure();
        };
        let (verdict, completer) = ctx.pending();
        let users = self.users.clone();
        let password: Secret = ctx.password.clone();
        slot.run(move || completer.complete(decide(&users, &user, &password, peer)));
        verdict
    }
}

fn decide(users: &UserFile, user: &str, password: &Secret, peer: std::net::SocketAddr) -> Verdict {
    if users.verify(user, password.expose().as_bytes()) {
        hooks_api::log::debug!("auth-file: {user} authenticated from {peer}");
        Verdict::accept()
    } else {
        hooks_api::log::info!("auth-file: authentication failed for {user:?} from {peer}");
        invalid_credentials()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hooks_api::{Auth, ChannelPending, Ctx, Notes, SessionInfo, TlsInfo};
    use std::time::Duration;

    fn cheap(password: &str) -> String {
        use argon2::password_hash::{PasswordHasher, SaltString};
        let params = argon2::Params::new(8, 1, 1, None).unwrap();
        let a = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
        let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
        a.hash_password(password.as_bytes(), &salt)
            .unwrap()
            .to_string()
    }

    fn setup(extra: &str) -> (tempfile::TempDir, Authenticator) {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("users");
        let bob = bcrypt::hash("hunter2", 4).unwrap();
        std::fs::write(&file, format!("alice:{}\nbob:{bob}\n", cheap("secret"))).unwrap();
        let text = format!("file = {:?}\n{extra}", file.display().to_string());
        let config: Config = hooks_api::toml::from_str(&text).unwrap();
        (dir, Authenticator::new(&config).unwrap())
    }

    fn session(tls: bool) -> SessionInfo {
        let mut s = SessionInfo::new(
            "192.0.2.1:4000".parse().unwrap(),
            "192.0.2.2:587".parse().unwrap(),
        );
        if tls {
            s.tls = Some(TlsInfo::new("TLSv1.3", "TLS13_AES_128_GCM_SHA256"));
        }
        s
    }

    /// Runs the hook, waiting for a pending verdict when `pend`.
    fn auth(
        a: &Authenticator,
        tls: bool,
        mech: Mechanism,
        user: &str,
        pw: &str,
        pend: bool,
    ) -> Verdict {
        let (mut s, mut c, mut t) = (session(tls), Notes::new(), Notes::new());
        let password = Secret::new(pw);
        let event = Auth {
            mechanism: &mech,
            authcid: user,
            authzid: "",
            password: &password,
        };
        let source = ChannelPending::new();
        let mut ctx = Ctx::new(&mut s, &mut c, &mut t, event);
        if pend {
            ctx = ctx.with_pending(&source);
        }
        match a.on_auth(&mut ctx) {
            Verdict::Pending(p) => {
                let (ticket, v) = source.wait(Duration::from_secs(10)).unwrap();
                assert_eq!(ticket, p.ticket());
                v
            }
            v => v,
        }
    }

    fn wire(v: &Verdict) -> String {
        String::from_utf8(v.reply().unwrap().to_bytes()).unwrap()
    }

    #[test]
    fn accepts_and_rejects() {
        let (_dir, a) = setup("");
        for pend in [false, true] {
            assert_eq!(
                auth(&a, true, Mechanism::Plain, "alice", "secret", pend),
                Verdict::accept()
            );
            assert_eq!(
                auth(&a, true, Mechanism::Login, "bob", "hunter2", pend),
                Verdict::accept()
            );
            let bad = auth(&a, true, Mechanism::Plain, "alice", "wrong", pend);
            assert_eq!(bad, invalid_credentials());
            assert_eq!(
                wire(&bad),
                "535 5.7.8 Authentication credentials invalid\r\n"
            );
            assert_eq!(
                auth(&a, true, Mechanism::Plain, "nobody", "secret", pend),
                invalid_credentials()
            );
            // Without TLS too: the server refused already unless `[auth] plaintext`.
            assert_eq!(
                auth(&a, false, Mechanism::Plain, "alice", "secret", pend),
                Verdict::accept()
            );
        }
        assert_eq!(
            auth(&a, true, Mechanism::XOAuth2, "alice", "tok", false),
            Verdict::Continue
        );
    }

    #[test]
    fn plaintext_allowed_and_realm() {
        let (_dir, a) = setup("realm = 'example.com'");
        assert_eq!(
            auth(&a, false, Mechanism::Plain, "alice", "secret", true),
            Verdict::accept()
        );
        assert_eq!(
            auth(
                &a,
                false,
                Mechanism::Plain,
                "alice@EXAMPLE.com",
                "secret",
                true
            ),
            Verdict::accept()
        );
        assert_eq!(
            auth(
                &a,
                false,
                Mechanism::Plain,
                "alice@example.org",
                "secret",
                true
            ),
            invalid_credentials()
        );
        assert_eq!(a.user_for("alice", "bob"), None);
        assert_eq!(a.user_for("alice", "alice"), Some("alice"));
    }

    #[test]
    fn config_errors_are_clear() {
        let err = hooks_api::PluginConfig::new("auth-file", hooks_api::toml::Table::new())
            .deserialize::<Config>()
            .unwrap_err();
        assert!(
            err.contains("[plugins.auth-file]") && err.contains("file"),
            "{err}"
        );
        let table = hooks_api::toml::from_str("file = '/x'\nfiel = 1").unwrap();
        let err = hooks_api::PluginConfig::new("auth-file", table)
            .deserialize::<Config>()
            .unwrap_err();
        assert!(err.contains("fiel"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("users");
        std::fs::write(&file, "").unwrap();
        let text = format!(
            "file = {:?}\nallow_plaintext_without_tls = true",
            file.display().to_string()
        );
        let config: Config = hooks_api::toml::from_str(&text).unwrap();
        let err = Authenticator::new(&config).unwrap_err();
        assert!(err.contains("[auth]") && err.contains("plaintext"), "{err}");
    }
}
