//! Server side: PLAIN and LOGIN exchanges.

use super::{
    check_field, decode_b64, decode_initial_response, decode_response_line, Credentials, Field,
    Mechanism, SaslError, Secret, LOGIN_PASSWORD_CHALLENGE, LOGIN_USERNAME_CHALLENGE,
};
use crate::limits::Limits;

/// Decodes a base64 PLAIN response (RFC 4616) into validated [`Credentials`].
///
/// `response` is the base64 text (without `AUTH PLAIN`, without CRLF). See [`parse_plain`]
/// for the checks applied after decoding.
pub fn decode_plain(response: &[u8]) -> Result<Credentials, SaslError> {
    parse_plain(&decode_b64(response)?)
}

/// Parses a decoded PLAIN message `[authzid] NUL authcid NUL passwd` (RFC 4616 §2).
///
/// Checks: exactly two NUL separators (so no NUL inside a field), every field UTF-8 and at most
/// 255 octets, `authcid` and `passwd` not empty. Errors are [`SaslError::Malformed`] naming
/// the broken rule, never the field's contents.
pub fn parse_plain(message: &[u8]) -> Result<Credentials, SaslError> {
    let mut parts = message.split(|&b| b == 0);
    let authzid = parts.next().unwrap_or_default();
    let authcid = parts
        .next()
        .ok_or(SaslError::Malformed("missing NUL separator"))?;
    let password = parts
        .next()
        .ok_or(SaslError::Malformed("missing NUL separator"))?;
    if parts.next().is_some() {
        return Err(SaslError::Malformed("NUL inside a field"));
    }
    Ok(Credentials {
        authzid: check_field(authzid, Field::Authzid).map_err(SaslError::Malformed)?,
        authcid: check_field(authcid, Field::Authcid).map_err(SaslError::Malformed)?,
        password: Secret(check_field(password, Field::Password).map_err(SaslError::Malformed)?),
    })
}

/// What the server does next in an exchange; returned by [`SaslServer::poll_step`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerStep {
    /// Send `334 <this base64 text>` (an empty string gives `334 `), then feed the client's
    /// next line to [`SaslServer::handle_response`].
    Challenge(&'static str),
    /// The exchange is complete: check these credentials, then send
    /// [`AUTH_SUCCEEDED`](super::AUTH_SUCCEEDED) or
    /// [`CREDENTIALS_INVALID`](super::CREDENTIALS_INVALID).
    Credentials(Credentials),
    /// The exchange failed: send [`SaslError::reply`]; the session leaves AUTH.
    Failed(SaslError),
}

/// A server-side PLAIN or LOGIN exchange, sans-IO.
///
/// Order of calls: [`SaslServer::start`] with the `AUTH` command's mechanism and optional
/// initial response; then loop: [`SaslServer::poll_step`] — on
/// [`ServerStep::Challenge`] send it and call [`SaslServer::handle_response`] with the next
/// line; on [`ServerStep::Credentials`] or [`ServerStep::Failed`] the exchange is over and
/// further polls return `None`.
///
/// Errors stick: after a failure, responses are ignored and [`SaslServer::error`] keeps the
/// error. `Debug` never shows the password.
#[derive(Debug)]
pub struct SaslServer {
    state: Result<State, SaslError>,
    max_line: usize,
    failure_polled: bool,
}

#[derive(Debug)]
enum State {
    /// A challenge waits to be polled; afterwards the exchange awaits the given response.
    Challenge(&'static str, Await),
    /// A challenge was sent; awaiting the client's line.
    Await(Await),
    /// Credentials wait to be polled.
    Done(Credentials),
    /// Credentials were polled.
    Finished,
}

#[derive(Debug)]
enum Await {
    PlainResponse,
    LoginUsername,
    LoginPassword { username: String },
}

impl SaslServer {
    /// Starts an exchange for `AUTH <mechanism> [initial_response]`, with the default AUTH line
    /// limit. `initial_response` is the raw argument (`=` means empty).
    ///
    /// Mechanisms other than PLAIN and LOGIN fail with [`SaslError::UnsupportedMechanism`]
    /// (reply 504). Checking that the mechanism is offered and TLS is up is the caller's job.
    pub fn start(mechanism: &Mechanism, initial_response: Option<&[u8]>) -> Self {
        Self::start_with_limits(mechanism, initial_response, &Limits::default())
    }

    /// Like [`SaslServer::start`], with the AUTH line limit taken from `limits`.
    pub fn start_with_limits(
        mechanism: &Mechanism,
        initial_response: Option<&[u8]>,
        limits: &Limits,
    ) -> Self {
        let max_line = limits.auth_line;
        let state = match (mechanism, initial_response) {
            (Mechanism::Plain, None) => Ok(State::Challenge("", Await::PlainResponse)),
            (Mechanism::Plain, Some(ir)) => decode_initial_response(ir, max_line)
                .and_then(|msg| parse_plain(&msg))
                .map(State::Done),
            (Mechanism::Login, None) => Ok(State::Challenge(
                LOGIN_USERNAME_CHALLENGE,
                Await::LoginUsername,
            )),
            (Mechanism::Login, Some(ir)) => decode_initial_response(ir, max_line)
                .and_then(|user| login_field(&user, Field::Authcid))
                .map(|username| {
                    State::Challenge(LOGIN_PASSWORD_CHALLENGE, Await::LoginPassword { username })
                }),
            (other, _) => Err(SaslError::UnsupportedMechanism(other.to_string())),
        };
        SaslServer {
            state,
            max_line,
            failure_polled: false,
        }
    }

    /// Feeds one client line (with or without CRLF) after a [`ServerStep::Challenge`].
    ///
    /// A line fed while no challenge is outstanding fails the exchange with
    /// [`SaslError::Sequence`]; a line fed after a failure is ignored.
    pub fn handle_response(&mut self, line: &[u8]) {
        let state = match &mut self.state {
            Ok(state) => std::mem::replace(state, State::Finished),
            Err(_) => return,
        };
        self.state = match state {
            State::Await(awaiting) => self.step(awaiting, line),
            State::Challenge(..) | State::Done(_) | State::Finished => Err(SaslError::Sequence),
        };
    }

    fn step(&self, awaiting: Await, line: &[u8]) -> Result<State, SaslError> {
        let data = decode_response_line(line, self.max_line)?;
        match awaiting {
            Await::PlainResponse => parse_plain(&data).map(State::Done),
            Await::LoginUsername => {
                let username = login_field(&data, Field::Authcid)?;
                Ok(State::Challenge(
                    LOGIN_PASSWORD_CHALLENGE,
                    Await::LoginPassword { username },
                ))
            }
            Await::LoginPassword { username } => {
                let password = login_field(&data, Field::Password)?;
                Ok(State::Done(Credentials {
                    authzid: String::new(),
                    authcid: username,
                    password: Secret(password),
                }))
            }
        }
    }

    /// Returns what to do next, or `None` while awaiting a response or once the outcome
    /// (credentials or failure) has been returned.
    pub fn poll_step(&mut self) -> Option<ServerStep> {
        match &mut self.state {
            Err(e) if !self.failure_polled => {
                self.failure_polled = true;
                Some(ServerStep::Failed(e.clone()))
            }
            Err(_) => None,
            Ok(state) => match std::mem::replace(state, State::Finished) {
                State::Challenge(challenge, next) => {
                    *state = State::Await(next);
                    Some(ServerStep::Challenge(challenge))
                }
                State::Done(credentials) => Some(ServerStep::Credentials(credentials)),
                other => {
                    *state = other;
                    None
                }
            },
        }
    }

    /// The error that ended the exchange, if it failed.
    pub fn error(&self) -> Option<&SaslError> {
        self.state.as_ref().err()
    }

    /// Whether the exchange has ended (credentials polled or failed).
    pub fn is_finished(&self) -> bool {
        matches!(self.state, Err(_) | Ok(State::Finished))
    }
}

/// LOGIN fields get the same checks as PLAIN fields (UTF-8, no NUL, 1..=255 octets).
fn login_field(data: &[u8], which: Field) -> Result<String, SaslError> {
    check_field(data, which).map_err(SaslError::Malformed)
}
