//! Running `impulse send` from the root tests: one runner and the usual envelope arguments.

#![allow(dead_code)]

use std::io::Write;
use std::process::{Command, Output, Stdio};

/// The sender and recipient most tests use.
pub const FROM: &str = "a@example.org";
/// See [`FROM`].
pub const TO: &str = "b@example.com";

/// Runs `impulse send ARGS` (standard input: `stdin`, or empty) and waits for it.
pub fn impulse_send(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_impulse"))
        .arg("send")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run impulse send");
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.unwrap_or_default()).unwrap();
    drop(input);
    child.wait_with_output().unwrap()
}

/// `--server SERVER --from FROM --to TO`, then `extra`.
pub fn to_server<'a>(server: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["--server", server, "--from", FROM, "--to", TO];
    args.extend_from_slice(extra);
    args
}
