//! `impulse-passwd FILE USER`: sets USER's password in the auth-file user file FILE.
//!
//! The password is read from standard input (its first line, without the line ending),
//! hashed with Argon2id, and written atomically: the file is created with mode 0600 if
//! missing, an existing line for USER is replaced, other lines are kept.
//!
//! ```sh
//! printf '%s\n' 'correct horse battery staple' | impulse-passwd /etc/impulse/users alice
//! ```

use std::io::BufRead;
use std::path::Path;
use std::process::ExitCode;

use impulse_plugin_auth_file::passwd::{hash_password, set_user};

fn run(args: &[String]) -> Result<(), String> {
    let [file, user] = args else {
        return Err("usage: impulse-passwd FILE USER   (the password is read from stdin)".into());
    };
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| format!("cannot read the password: {e}"))?;
    let password = line.trim_end_matches(['\r', '\n']);
    if password.is_empty() {
        return Err("empty password (write it on standard input)".into());
    }
    let hash = hash_password(password)?;
    set_user(Path::new(file), user, &hash)?;
    eprintln!("impulse-passwd: password for {user} set in {file}");
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("impulse-passwd: {e}");
            ExitCode::FAILURE
        }
    }
}
