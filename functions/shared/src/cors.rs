//! CORS for a back office in a browser: what an allowed origin looks like, and the headers a
//! preflight allows and a response exposes. The functions answer by these rules; the deployer
//! checks an environment's origins with the same parser.

/// The request headers a preflight allows: a bearer token, a JSON body, a conditional update.
pub const ALLOWED_HEADERS: &str = "Authorization, Content-Type, If-Match";

/// The response headers a browser script may read.
pub const EXPOSED_HEADERS: &str = "ETag, Location, Retry-After, x-request-id";

/// How long a browser may cache a preflight answer, in seconds (Chromium caps it at 7200).
pub const MAX_AGE_SECONDS: u32 = 7200;

/// The environment variable holding the allowed origins, comma-separated.
pub const ORIGINS_VARIABLE: &str = "CORS_ALLOWED_ORIGINS";

/// An origin as a browser serialises it in the `Origin` header: `https://host` or
/// `http://host:port`, lower-case, with no path, query, fragment or user. A wildcard is refused:
/// every allowed origin is named.
pub fn parse_origin(text: &str) -> Result<String, String> {
    let refuse =
        |why: &str| Err(format!("{text:?} is not an origin ({why}); write it as https://host or https://host:port"));
    if text == "*" || text.contains('*') {
        return refuse("wildcards are not allowed: name each origin");
    }
    let Some((scheme, rest)) = text.split_once("://") else {
        return refuse("no scheme");
    };
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "https" && scheme != "http" {
        return refuse("the scheme must be https or http");
    }
    if rest.is_empty() {
        return refuse("no host");
    }
    if rest.contains(['/', '?', '#', '@']) || rest.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return refuse("an origin has no path, query, fragment or user");
    }
    // An IPv6 host is bracketed, and its colons are not the port's.
    let (host, port) = match rest.strip_prefix('[').and_then(|r| r.split_once(']')) {
        Some((address, after)) => (address, after.strip_prefix(':').or(Some(after).filter(|a| !a.is_empty()))),
        None => match rest.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (rest, None),
        },
    };
    if host.is_empty() || !host.chars().all(|c| c.is_ascii_alphanumeric() || "-.:".contains(c)) {
        return refuse("the host must be a DNS name or an IP address");
    }
    if let Some(port) = port
        && port.parse::<u16>().map_or(true, |p| p == 0)
    {
        return refuse("the port must be a number from 1 to 65535");
    }
    Ok(format!("{scheme}://{}", rest.to_ascii_lowercase()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_scheme_host_and_port_only() {
        assert_eq!(parse_origin("https://Admin.Example.com").as_deref(), Ok("https://admin.example.com"));
        assert_eq!(parse_origin("http://localhost:5173").as_deref(), Ok("http://localhost:5173"));
        assert_eq!(parse_origin("http://[::1]:8080").as_deref(), Ok("http://[::1]:8080"));
        for bad in [
            "*",
            "https://*.example.com",
            "example.com",
            "ftp://example.com",
            "https://",
            "https://example.com/",
            "https://example.com/admin",
            "https://example.com?x=1",
            "https://user@example.com",
            "https://example.com:0",
            "https://example.com:99999",
            "https://exa mple.com",
        ] {
            assert!(parse_origin(bad).is_err(), "{bad}");
        }
    }
}
