//! Protocol limits in one place.
//!
//! Each constant names an RFC minimum or Impulse's default. Parsers take their limits from a
//! [`Limits`] value so the server and client can override them from configuration; the
//! constants are the defaults.

/// RFC 5321 §4.5.3.1.4: a command line including CRLF is at least 512 octets; Impulse accepts
/// up to 2048 (Postfix's default) before answering `500 5.5.2 command too long`.
pub const MAX_COMMAND_LINE: usize = 2048;
/// RFC 4954 §4: an AUTH response line may be 12288 octets.
pub const MAX_AUTH_LINE: usize = 12288;
/// RFC 5321 §4.5.3.1.5: a reply line including CRLF is at least 512 octets; a client accepts up
/// to 2048.
pub const MAX_REPLY_LINE: usize = 2048;
/// The most lines a multi-line reply may have before the client gives up on it.
pub const MAX_REPLY_LINES: usize = 256;
/// The most bytes a whole (multi-line) reply may have: 64 KiB.
pub const MAX_REPLY_BYTES: usize = 64 * 1024;
/// RFC 5321 §4.5.3.1.1: local-part, at least 64 octets.
pub const MAX_LOCAL_PART: usize = 64;
/// RFC 5321 §4.5.3.1.2: domain, at least 255 octets.
pub const MAX_DOMAIN: usize = 255;
/// RFC 5321 §4.5.3.1.3 asks for 256 octets of path; Impulse accepts up to 1024.
pub const MAX_PATH: usize = 1024;
/// RFC 5321 §4.5.3.1.6: a text line in DATA is at least 1000 octets including CRLF. Longer lines
/// are stored byte-exact; the decoder reports them so the server can apply its policy.
pub const MAX_TEXT_LINE: usize = 1000;
/// RFC 5321 §4.5.3.1.8: at least 100 recipients per message; Impulse's default is 1000.
pub const MAX_RECIPIENTS: usize = 1000;
/// Default maximum message size, advertised in SIZE: 32 MiB.
pub const MAX_MESSAGE_SIZE: u64 = 32 * 1024 * 1024;
/// RFC 3461 §4.4: ENVID is at most 100 characters.
pub const MAX_ENVID: usize = 100;
/// RFC 3461 §4.2: ORCPT is at most 500 characters.
pub const MAX_ORCPT: usize = 500;

/// Limits applied by the parsers, with RFC-derived defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Longest command line, CRLF included.
    pub command_line: usize,
    /// Longest AUTH continuation line, CRLF included.
    pub auth_line: usize,
    /// Longest reply line, CRLF included.
    pub reply_line: usize,
    /// Most lines in one reply.
    pub reply_lines: usize,
    /// Most bytes in one reply.
    pub reply_bytes: usize,
    /// Longest local-part.
    pub local_part: usize,
    /// Longest domain.
    pub domain: usize,
    /// Longest path (the address between `<` and `>`).
    pub path: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            command_line: MAX_COMMAND_LINE,
            auth_line: MAX_AUTH_LINE,
            reply_line: MAX_REPLY_LINE,
            reply_lines: MAX_REPLY_LINES,
            reply_bytes: MAX_REPLY_BYTES,
            local_part: MAX_LOCAL_PART,
            domain: MAX_DOMAIN,
            path: MAX_PATH,
        }
    }
}
