//! `policy-keygen`: prints a new random API key and its line for the key file.
//!
//! ```text
//! cargo run -p policy-keygen
//! cargo run -p policy-keygen -- --name mobile-app --scopes read,write --expires 2027-01-01
//! ```
//!
//! The key is 32 bytes from the operating system's random source, written in
//! URL-safe base64 without padding (43 characters). Give it to the client;
//! put the printed line in the key file (`API_KEY_FILE`), which thus holds
//! only the key's SHA-256 digest. Nothing is written anywhere.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use policy_runtime::{ApiKey, ApiKeyStore};
use std::process::ExitCode;

const USAGE: &str = "\
usage: policy-keygen [--name NAME] [--scopes SCOPE,SCOPE] [--expires TIME]

Prints a new random API key and its line for the key file (API_KEY_FILE).

  --name NAME        the key's name in logs (default: client); no spaces
  --scopes a,b       the key's scopes, comma-separated
  --expires TIME     when the key stops working: 2027-01-01T00:00:00Z or 2027-01-01 (UTC)";

/// Bytes of entropy in a key.
const KEY_BYTES: usize = 32;

struct Options {
    name: String,
    scopes: Vec<String>,
    expires: Option<String>,
}

fn main() -> ExitCode {
    let options = match parse_args(std::env::args().skip(1)) {
        Ok(Some(options)) => options,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("policy-keygen: {message}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match generate(&options) {
        Ok((key, line)) => {
            println!("key:  {key}");
            println!("line: {line}");
            eprintln!(
                "Give the key to the client `{}` over a private channel; it is not stored anywhere.\n\
                 Add the line to the key file named by API_KEY_FILE; it holds only the key's SHA-256 digest.",
                options.name
            );
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("policy-keygen: {message}");
            ExitCode::FAILURE
        }
    }
}

/// The options, or `None` when help was asked for.
fn parse_args(args: impl Iterator<Item = String>) -> Result<Option<Options>, String> {
    let mut options = Options {
        name: "client".to_owned(),
        scopes: Vec::new(),
        expires: None,
    };
    let mut args = args.peekable();
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => {
                (flag.to_owned(), Some(value.to_owned()))
            }
            _ => (arg.clone(), None),
        };
        if flag == "-h" || flag == "--help" {
            return Ok(None);
        }
        if !matches!(flag.as_str(), "--name" | "--scopes" | "--expires") {
            return Err(format!("unknown argument `{arg}`"));
        }
        let value = match inline {
            Some(value) => value,
            None => args
                .next()
                .ok_or_else(|| format!("`{flag}` needs a value"))?,
        };
        match flag.as_str() {
            "--name" => options.name = value,
            "--scopes" => {
                options.scopes = value
                    .split(',')
                    .map(str::trim)
                    .filter(|scope| !scope.is_empty())
                    .map(str::to_owned)
                    .collect()
            }
            _ => options.expires = Some(value),
        }
    }
    if options.name.is_empty()
        || options.name.starts_with('#')
        || options
            .name
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(
            "the name must be a plain word such as `mobile-app`, without spaces".to_owned(),
        );
    }
    Ok(Some(options))
}

/// A new key and its key-file line, checked by reading the line back.
fn generate(options: &Options) -> Result<(String, String), String> {
    let mut bytes = [0u8; KEY_BYTES];
    getrandom::fill(&mut bytes)
        .map_err(|error| format!("the operating system gave no random bytes: {error}"))?;
    let key = URL_SAFE_NO_PAD.encode(bytes);
    let mut line = ApiKey::new(&options.name, &key)
        .scopes(&options.scopes)
        .key_file_line();
    if let Some(expires) = &options.expires {
        line.push_str(" expires=");
        line.push_str(expires);
    }
    // Read the line as the engine will, so a bad scope or time is caught here.
    let store = ApiKeyStore::from_key_lines("the generated line", &line)
        .map_err(|error| error.problems().join("; "))?;
    if store.verify(key.as_bytes()).is_none() {
        return Err("the expiry is in the past; the key would be refused at once".to_owned());
    }
    Ok((key, line))
}
