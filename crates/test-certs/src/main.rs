//! `test-certs DIR`: makes a fresh test CA and server certificates
//! (`test_certs::Pki`) and writes them into DIR (created if missing):
//! `ca.pem`, `server.pem` + `server.key` (localhost, 127.0.0.1),
//! `other.pem` + `other.key` (other.localhost). For the TLS load script and
//! manual checks with curl or openssl. Test material only.
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str = "usage: test-certs DIR
writes a fresh test CA and server certificates into DIR (created if missing):
  ca.pem                   the CA certificate (curl --cacert, openssl -CAfile)
  server.pem, server.key   localhost and 127.0.0.1
  other.pem, other.key     other.localhost (for SNI)";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let dir = match args.as_slice() {
        [flag] if flag == "-h" || flag == "--help" => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        [dir] => PathBuf::from(dir),
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let written = std::fs::create_dir_all(&dir)
        .map_err(test_certs::Error::Write)
        .and_then(|()| test_certs::Pki::generate()?.write_to(&dir));
    match written {
        Ok(files) => {
            println!("{}", files.ca.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("test-certs: {e}");
            ExitCode::FAILURE
        }
    }
}
