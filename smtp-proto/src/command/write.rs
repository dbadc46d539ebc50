//! [`Command::write_to`]: a [`Command`] to its canonical wire form.

use std::io::Write;

use super::Command;

impl Command<'_> {
    /// Appends the command in canonical wire form: upper-case verb, single spaces,
    /// `MAIL FROM:<path> PARAMS`, ending in CRLF.
    ///
    /// Values produced by [`Command::parse`] always round-trip. As a guard against command
    /// injection from hand-built values, any CR or LF inside a field is dropped, so the output
    /// is always exactly one line.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        let start = out.len();
        // Writing to a Vec cannot fail.
        let _ = match self {
            Command::Helo { domain } => write!(out, "HELO {domain}"),
            Command::Ehlo { domain } => write!(out, "EHLO {domain}"),
            Command::Mail { from, params } => {
                let _ = write!(out, "MAIL FROM:{from}");
                params.write_to(out);
                Ok(())
            }
            Command::Rcpt { to, params } => {
                let _ = write!(out, "RCPT TO:{to}");
                params.write_to(out);
                Ok(())
            }
            Command::Data => write!(out, "DATA"),
            Command::Bdat { size, last: false } => write!(out, "BDAT {size}"),
            Command::Bdat { size, last: true } => write!(out, "BDAT {size} LAST"),
            Command::Rset => write!(out, "RSET"),
            Command::Vrfy { arg } => write!(out, "VRFY {arg}"),
            Command::Expn { arg } => write!(out, "EXPN {arg}"),
            Command::Help { arg: None } => write!(out, "HELP"),
            Command::Help { arg: Some(arg) } => write!(out, "HELP {arg}"),
            Command::Noop { arg: None } => write!(out, "NOOP"),
            Command::Noop { arg: Some(arg) } => write!(out, "NOOP {arg}"),
            Command::Quit => write!(out, "QUIT"),
            Command::StartTls => write!(out, "STARTTLS"),
            Command::Auth {
                mechanism,
                initial_response: None,
            } => write!(out, "AUTH {mechanism}"),
            Command::Auth {
                mechanism,
                initial_response: Some(r),
            } if r.is_empty() => {
                write!(out, "AUTH {mechanism} =")
            }
            Command::Auth {
                mechanism,
                initial_response: Some(r),
            } => {
                write!(out, "AUTH {mechanism} {r}")
            }
            Command::Other { verb, args } => {
                // As sent: `Other` keeps the verb's case, so what parsed writes back the same.
                out.extend_from_slice(verb.as_bytes());
                match args {
                    Some(args) => write!(out, " {args}"),
                    None => Ok(()),
                }
            }
        };
        let mut kept = start;
        for i in start..out.len() {
            let b = out[i];
            if b != b'\r' && b != b'\n' {
                out[kept] = b;
                kept += 1;
            }
        }
        out.truncate(kept);
        out.extend_from_slice(b"\r\n");
    }

    /// The wire form as a new buffer; see [`Command::write_to`].
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.write_to(&mut out);
        out
    }
}
