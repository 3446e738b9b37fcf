//! Which JWKS URLs a function may fetch keys from: `https://`, or `http://` on loopback only
//! (a local issuer in `cargo xtask dev`, the emulator, tests). Plain HTTP anywhere else would let
//! anyone on the path swap the keys that decide who is admin.

use std::net::IpAddr;

/// Whether `url` is an acceptable JWKS URL. The deployer checks environment files with it and
/// the functions check `AUTH_JWKS_URL` with it, so the two can never disagree.
pub fn is_allowed_jwks_url(url: &str) -> bool {
    if let Some(rest) = url.strip_prefix("https://") {
        return host_of(rest).is_some_and(|host| !host.is_empty());
    }
    url.strip_prefix("http://").and_then(host_of).is_some_and(is_loopback)
}

/// The host of what follows the scheme, or None when the authority names a user (as in
/// `http://127.0.0.1@issuer.example/`, whose host is not 127.0.0.1).
fn host_of(rest: &str) -> Option<&str> {
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.contains('@') {
        return None;
    }
    match authority.strip_prefix('[') {
        Some(bracketed) => bracketed.split_once(']').map(|(host, _)| host),
        None => authority.split(':').next(),
    }
}

fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost") || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_anywhere_and_http_only_on_loopback() {
        for good in [
            "https://issuer.example/.well-known/jwks.json",
            "https://issuer.example:8443/keys",
            "http://127.0.0.1:4000/.well-known/jwks.json",
            "http://127.3.2.1/jwks",
            "http://localhost:3000/.well-known/jwks.json",
            "http://[::1]:9000/jwks",
        ] {
            assert!(is_allowed_jwks_url(good), "{good}");
        }
        for bad in [
            "http://issuer.example/.well-known/jwks.json",
            "http://10.0.0.1/jwks",
            "http://127.0.0.1@issuer.example/jwks",
            "http://localhost.issuer.example/jwks",
            "http://[::2]/jwks",
            "ftp://127.0.0.1/jwks",
            "https:///jwks",
            "issuer.example/jwks",
            "",
        ] {
            assert!(!is_allowed_jwks_url(bad), "{bad}");
        }
    }
}
