//! Client side: PLAIN and XOAUTH2 initial responses, LOGIN answers, mechanism choice.

use super::{check_field, decode_b64, encode_b64, Field, Mechanism, SaslError, Secret};

/// Builds the base64 PLAIN initial response (RFC 4616) for `AUTH PLAIN <response>`.
///
/// `authzid` may be empty (act as `authcid`). Fails with [`SaslError::InvalidCredential`] when
/// a field breaks RFC 4616: NUL inside, over 255 octets, or an empty `authcid`/`password`.
pub fn encode_plain(authzid: &str, authcid: &str, password: &str) -> Result<String, SaslError> {
    check_field(authzid.as_bytes(), Field::Authzid).map_err(SaslError::InvalidCredential)?;
    check_field(authcid.as_bytes(), Field::Authcid).map_err(SaslError::InvalidCredential)?;
    check_field(password.as_bytes(), Field::Password).map_err(SaslError::InvalidCredential)?;
    let mut msg = Vec::with_capacity(authzid.len() + authcid.len() + password.len() + 2);
    msg.extend_from_slice(authzid.as_bytes());
    msg.push(0);
    msg.extend_from_slice(authcid.as_bytes());
    msg.push(0);
    msg.extend_from_slice(password.as_bytes());
    Ok(encode_b64(&msg))
}

/// Builds the base64 XOAUTH2 initial response `user=<user>^Aauth=Bearer <token>^A^A` for
/// `AUTH XOAUTH2 <response>`.
///
/// Fails with [`SaslError::InvalidCredential`] when either value is empty or contains `^A`
/// (0x01), the field separator. On failure the server answers `334 <base64 JSON>`: decode it
/// with [`decode_xoauth2_challenge`], then send an empty line; the server then sends its final
/// error reply.
pub fn encode_xoauth2(user: &str, token: &str) -> Result<String, SaslError> {
    if user.is_empty() || user.contains('\x01') {
        return Err(SaslError::InvalidCredential(
            "XOAUTH2 user empty or contains ^A",
        ));
    }
    if token.is_empty() || token.contains('\x01') {
        return Err(SaslError::InvalidCredential(
            "XOAUTH2 token empty or contains ^A",
        ));
    }
    Ok(encode_b64(
        format!("user={user}\x01auth=Bearer {token}\x01\x01").as_bytes(),
    ))
}

/// Decodes the base64 error challenge an XOAUTH2 server sends after a rejected token (the text
/// after `334 `), returning the JSON document as raw text, decoded lossily as UTF-8. No JSON
/// parsing is done here.
pub fn decode_xoauth2_challenge(challenge: &[u8]) -> Result<String, SaslError> {
    let challenge = challenge.strip_suffix(b"\r\n").unwrap_or(challenge);
    Ok(String::from_utf8_lossy(&decode_b64(challenge)?).into_owned())
}

/// What kind of secret the client holds, for [`choose_mechanism`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CredentialKind {
    /// A user name and password.
    Password,
    /// A user name and an OAuth 2.0 access token.
    OAuth2Token,
}

/// Picks the best mechanism the server offers for the credentials we hold.
///
/// Password: `PLAIN` (one round trip) before `LOGIN`. Token: `XOAUTH2` only. `CRAM-MD5` and
/// unknown mechanisms are never chosen (not implemented). Returns `None` when nothing fits.
/// Refusing PLAIN/LOGIN without TLS is the client driver's policy, not this function's.
pub fn choose_mechanism(offered: &[Mechanism], have: CredentialKind) -> Option<Mechanism> {
    let preference: &[Mechanism] = match have {
        CredentialKind::Password => &[Mechanism::Plain, Mechanism::Login],
        CredentialKind::OAuth2Token => &[Mechanism::XOAuth2],
    };
    preference.iter().find(|m| offered.contains(m)).cloned()
}

/// The client side of LOGIN: answers `Username:` and `Password:` challenges.
///
/// Call [`LoginClient::initial_response`] to send the user name with `AUTH LOGIN <response>`
/// (optional), then [`LoginClient::handle_challenge`] with the text after each `334 `, sending
/// back what it returns. On an error, send [`CANCEL`](super::CANCEL). `Debug` redacts the
/// password.
#[derive(Debug, Clone)]
pub struct LoginClient {
    username: String,
    password: Secret,
    state: LoginState,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LoginState {
    NeedUsername,
    NeedPassword,
    Done,
}

impl LoginClient {
    /// A client that will log in as `username` with `password`.
    pub fn new(username: impl Into<String>, password: impl Into<Secret>) -> Self {
        LoginClient {
            username: username.into(),
            password: password.into(),
            state: LoginState::NeedUsername,
        }
    }

    /// The base64 user name for `AUTH LOGIN <response>`; afterwards the server's first
    /// challenge is expected to be `Password:`.
    pub fn initial_response(&mut self) -> String {
        self.state = LoginState::NeedPassword;
        encode_b64(self.username.as_bytes())
    }

    /// Answers one server challenge (the base64 text after `334 `, with or without CRLF) and
    /// returns the base64 line to send.
    ///
    /// A prompt starting with `user` (any case) gets the user name, one starting with `pass`
    /// the password; other prompts are answered in order (user name, then password). A
    /// challenge out of order or after the password fails with
    /// [`SaslError::UnexpectedChallenge`]; undecodable base64 with [`SaslError::BadBase64`].
    pub fn handle_challenge(&mut self, challenge: &[u8]) -> Result<String, SaslError> {
        let challenge = challenge.strip_suffix(b"\r\n").unwrap_or(challenge);
        let prompt = decode_b64(challenge)?;
        let prompt = prompt.trim_ascii_start();
        let starts =
            |p: &[u8]| prompt.len() >= p.len() && prompt[..p.len()].eq_ignore_ascii_case(p);
        let wants = if starts(b"user") {
            LoginState::NeedUsername
        } else if starts(b"pass") {
            LoginState::NeedPassword
        } else {
            self.state
        };
        if wants != self.state {
            return Err(SaslError::UnexpectedChallenge);
        }
        match self.state {
            LoginState::NeedUsername => {
                self.state = LoginState::NeedPassword;
                Ok(encode_b64(self.username.as_bytes()))
            }
            LoginState::NeedPassword => {
                self.state = LoginState::Done;
                Ok(encode_b64(self.password.expose().as_bytes()))
            }
            LoginState::Done => Err(SaslError::UnexpectedChallenge),
        }
    }

    /// Whether the password has been sent.
    pub fn is_done(&self) -> bool {
        self.state == LoginState::Done
    }
}
