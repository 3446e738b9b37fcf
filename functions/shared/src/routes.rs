//! THE route table: every HTTP route of the API, the Lambda function that serves it, and who may
//! call it. The deployer builds API Gateway from this list and the local gateway routes by it;
//! nothing else names a route.

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// A token with the admin scope.
    Admin,
    /// Any valid token.
    User,
}

/// The Lambda functions that serve HTTP routes (`migrate` is invoked by the deployer only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Function {
    Create,
    Update,
    Validate,
    List,
    Redeem,
}

impl Function {
    pub const ALL: [Function; 5] =
        [Function::Create, Function::Update, Function::Validate, Function::List, Function::Redeem];

    /// The function's crate and binary name under `functions/`.
    pub fn name(self) -> &'static str {
        match self {
            Function::Create => "create",
            Function::Update => "update",
            Function::Validate => "validate",
            Function::List => "list",
            Function::Redeem => "redeem",
        }
    }
}

/// Every Lambda function crate under `functions/`: the route functions, then `migrate`, which
/// the deployer invokes directly. What `cargo xtask build` builds and the deployer ships.
pub const FUNCTION_CRATES: [&str; 6] = ["create", "update", "validate", "list", "redeem", "migrate"];

/// One route: an HTTP method and an API Gateway resource path (`{name}` for a path parameter).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    pub method: &'static str,
    pub path: &'static str,
    pub function: Function,
    pub access: Access,
}

pub const ROUTES: &[Route] = &[
    Route { method: "POST", path: "/promo-codes", function: Function::Create, access: Access::Admin },
    Route { method: "GET", path: "/promo-codes", function: Function::List, access: Access::Admin },
    Route { method: "GET", path: "/promo-codes/{code}", function: Function::List, access: Access::Admin },
    Route { method: "PATCH", path: "/promo-codes/{code}", function: Function::Update, access: Access::Admin },
    Route { method: "GET", path: "/promo-codes/{code}/events", function: Function::List, access: Access::Admin },
    Route { method: "POST", path: "/validations", function: Function::Validate, access: Access::User },
    Route { method: "POST", path: "/redemptions", function: Function::Redeem, access: Access::User },
];

/// A browser's preflight `OPTIONS` on one resource path: answered by the function of the path's
/// first route (any function answers a preflight the same way), naming the path's methods.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preflight {
    pub path: &'static str,
    pub function: Function,
    pub methods: Vec<&'static str>,
}

/// The preflight of a resource path of the table (`/promo-codes/{code}`), if it has routes.
pub fn preflight(resource: &str) -> Option<Preflight> {
    let mut routes = ROUTES.iter().filter(|r| r.path == resource);
    let first = routes.next()?;
    let methods = std::iter::once(first.method).chain(routes.map(|r| r.method)).collect();
    Some(Preflight { path: first.path, function: first.function, methods })
}

/// Every resource path of the table once, with its preflight: the `OPTIONS` methods the API has.
pub fn preflights() -> Vec<Preflight> {
    let mut paths: Vec<&'static str> = ROUTES.iter().map(|r| r.path).collect();
    paths.sort_unstable();
    paths.dedup();
    paths.into_iter().filter_map(preflight).collect()
}

/// What a request path matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Match {
    /// A route, with its path parameters.
    Found(&'static Route, Vec<(&'static str, String)>),
    /// A preflight `OPTIONS` on a path that has routes, with its path parameters.
    Preflight(Preflight, Vec<(&'static str, String)>),
    /// The path exists, but not with this method: the methods it has, for `Allow`.
    MethodNotAllowed(Vec<&'static str>),
    NotFound,
}

/// Matches a method and a request path (without the stage) against the table.
pub fn match_route(method: &str, path: &str) -> Match {
    let mut methods = Vec::new();
    for route in ROUTES {
        if let Some(params) = match_path(route.path, path) {
            if method.eq_ignore_ascii_case("OPTIONS")
                && let Some(preflight) = preflight(route.path)
            {
                return Match::Preflight(preflight, params);
            }
            if route.method.eq_ignore_ascii_case(method) {
                return Match::Found(route, params);
            }
            methods.push(route.method);
        }
    }
    if methods.is_empty() { Match::NotFound } else { Match::MethodNotAllowed(methods) }
}

fn match_path(template: &'static str, path: &str) -> Option<Vec<(&'static str, String)>> {
    let path = path.strip_suffix('/').filter(|p| !p.is_empty()).unwrap_or(path);
    let mut template_parts = template.split('/');
    let mut path_parts = path.split('/');
    let mut params = Vec::new();
    loop {
        match (template_parts.next(), path_parts.next()) {
            (None, None) => return Some(params),
            (Some(t), Some(p)) => {
                if let Some(name) = t.strip_prefix('{').and_then(|t| t.strip_suffix('}')) {
                    if p.is_empty() {
                        return None;
                    }
                    params.push((name, p.to_owned()));
                } else if t != p {
                    return None;
                }
            }
            _ => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_function_serves_at_least_one_route() {
        for function in Function::ALL {
            assert!(ROUTES.iter().any(|r| r.function == function), "{function:?}");
        }
    }

    #[test]
    fn every_route_function_is_a_crate_that_gets_built() {
        for function in Function::ALL {
            assert!(FUNCTION_CRATES.contains(&function.name()), "{function:?}");
        }
    }

    #[test]
    fn no_route_is_listed_twice() {
        for (i, a) in ROUTES.iter().enumerate() {
            for b in &ROUTES[i + 1..] {
                assert!(!(a.method == b.method && a.path == b.path), "{a:?}");
            }
        }
    }

    #[test]
    fn the_openapi_spec_names_exactly_the_routes_of_the_table() {
        let spec: serde_yaml::Value =
            serde_yaml::from_str(include_str!("../../openapi.yaml")).expect("openapi.yaml parses");
        let mut in_spec: Vec<(String, String)> = Vec::new();
        for (path, item) in spec["paths"].as_mapping().expect("paths") {
            for (method, _) in item.as_mapping().expect("path item") {
                let method = method.as_str().expect("key");
                if ["get", "post", "patch", "put", "delete", "head", "options"].contains(&method) {
                    in_spec.push((method.to_ascii_uppercase(), path.as_str().expect("path").to_owned()));
                }
            }
        }
        let mut in_table: Vec<(String, String)> =
            ROUTES.iter().map(|r| (r.method.to_owned(), r.path.to_owned())).collect();
        in_spec.sort();
        in_table.sort();
        assert_eq!(in_spec, in_table);
    }

    #[test]
    fn paths_match_with_their_parameters() {
        match match_route("GET", "/promo-codes/SUMMER25") {
            Match::Found(route, params) => {
                assert_eq!(route.path, "/promo-codes/{code}");
                assert_eq!(params, vec![("code", "SUMMER25".to_owned())]);
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(match_route("POST", "/promo-codes/"), Match::Found(r, _) if r.function == Function::Create));
        assert_eq!(match_route("DELETE", "/promo-codes/X"), Match::MethodNotAllowed(vec!["GET", "PATCH"]));
        assert_eq!(match_route("GET", "/nope"), Match::NotFound);
        assert_eq!(match_route("GET", "/promo-codes/A/events/x"), Match::NotFound);
        assert!(
            matches!(match_route("GET", "/promo-codes/A/events"), Match::Found(r, _) if r.path == "/promo-codes/{code}/events")
        );
        assert_eq!(match_route("GET", "/promo-codes//"), Match::NotFound);
    }

    #[test]
    fn every_resource_path_has_one_preflight_naming_its_methods() {
        let preflights = preflights();
        assert_eq!(preflights.len(), 5, "{preflights:?}");
        let codes = preflights.iter().find(|p| p.path == "/promo-codes/{code}").expect("preflight");
        assert_eq!(codes.methods, vec!["GET", "PATCH"]);
        assert_eq!(codes.function, Function::List);
        match match_route("OPTIONS", "/promo-codes/A") {
            Match::Preflight(p, params) => {
                assert_eq!(p, *codes);
                assert_eq!(params, vec![("code", "A".to_owned())]);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(match_route("OPTIONS", "/nope"), Match::NotFound);
    }
}
