//! What API Gateway answers by itself (an unknown route, throttling, a failed or slow
//! integration, a body too large), in the contract's error shape instead of API Gateway's
//! `{"message": ...}`: one gateway response per type (PutGatewayResponse).

use std::collections::BTreeMap;
use std::fmt;

use crate::config::Origin;

/// One gateway response as the API holds it: its type, the status it forces (none: the
/// status API Gateway chose), its `application/json` template and its static headers.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct GatewayResponseSpec {
    pub response_type: String,
    pub status: Option<String>,
    pub template: String,
    /// Header name -> value, without the `gatewayresponse.header.` prefix and the quotes.
    pub headers: BTreeMap<String, String>,
}

impl fmt::Display for GatewayResponseSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {} {:?}",
            self.response_type,
            self.status.as_deref().unwrap_or("-"),
            self.template,
            self.headers
        )
    }
}

/// (type, forced status, contract code, message). `None` for the message: API Gateway's own,
/// which says what was wrong with the request.
const ANSWERS: &[(&str, Option<&str>, &str, Option<&str>)] = &[
    // API Gateway answers an unknown path or method with 403 "Missing Authentication Token".
    ("MISSING_AUTHENTICATION_TOKEN", Some("404"), "not_found", Some("no such route")),
    ("RESOURCE_NOT_FOUND", Some("404"), "not_found", Some("no such route")),
    ("THROTTLED", Some("429"), "rate_limited", Some("too many requests; retry after the time in Retry-After")),
    ("REQUEST_TOO_LARGE", Some("413"), "payload_too_large", Some("the request body is too large")),
    ("ACCESS_DENIED", Some("403"), "forbidden", Some("access denied")),
    ("INTEGRATION_TIMEOUT", Some("503"), "unavailable", Some("the service did not answer in time; retry shortly")),
    ("DEFAULT_4XX", None, "invalid_request", None),
    // A function that crashed, failed or answered no proxy response (502 on API Gateway), and
    // every other failure of the gateway's own: the contract's 500.
    ("DEFAULT_5XX", Some("500"), "internal", Some("internal error; the request id identifies it in our logs")),
];

/// The environment's gateway responses, sorted by type. With exactly one allowed origin, they
/// carry its `Access-Control-Allow-Origin` so a browser can read them; a gateway response's
/// headers are static, so with several origins they carry none.
pub fn gateway_responses(origins: &[Origin]) -> Vec<GatewayResponseSpec> {
    let mut answers: Vec<GatewayResponseSpec> = ANSWERS
        .iter()
        .map(|(response_type, status, code, message)| {
            let message = match message {
                Some(text) => serde_json::Value::from(*text).to_string(),
                // Already a JSON string: API Gateway escapes it.
                None => "$context.error.messageString".to_owned(),
            };
            let mut headers = BTreeMap::new();
            if *response_type == "THROTTLED" {
                headers.insert("Retry-After".to_owned(), "1".to_owned());
            }
            if let [origin] = origins {
                headers.insert("Access-Control-Allow-Origin".to_owned(), origin.as_str().to_owned());
                headers.insert("Access-Control-Expose-Headers".to_owned(), promo_shared::cors::EXPOSED_HEADERS.to_owned());
                headers.insert("Vary".to_owned(), "Origin".to_owned());
            }
            GatewayResponseSpec {
                response_type: (*response_type).to_owned(),
                status: status.map(str::to_owned),
                template: format!(
                    r#"{{"error":{{"code":"{code}","message":{message},"param":null,"request_id":"$context.requestId"}}}}"#
                ),
                headers,
            }
        })
        .collect();
    answers.sort();
    answers
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_route_is_404_not_found_in_the_contracts_shape() {
        let answers = gateway_responses(&[]);
        let missing = answers.iter().find(|a| a.response_type == "MISSING_AUTHENTICATION_TOKEN").expect("answer");
        assert_eq!(missing.status.as_deref(), Some("404"));
        let filled = missing.template.replace("$context.requestId", "req-1");
        let body: serde_json::Value = serde_json::from_str(&filled).expect("the template is JSON");
        assert_eq!(
            body,
            serde_json::json!({"error": {"code": "not_found", "message": "no such route", "param": null, "request_id": "req-1"}})
        );
        assert!(missing.headers.is_empty());
    }

    #[test]
    fn one_allowed_origin_is_named_on_every_gateway_answer_several_on_none() {
        let one = [Origin::try_from("https://admin.example.com".to_owned()).expect("origin")];
        assert!(
            gateway_responses(&one)
                .iter()
                .all(|a| a.headers.get("Access-Control-Allow-Origin") == Some(&"https://admin.example.com".to_owned()))
        );
        let two = [one[0].clone(), Origin::try_from("https://b.example.com".to_owned()).expect("origin")];
        assert!(gateway_responses(&two).iter().all(|a| !a.headers.contains_key("Access-Control-Allow-Origin")));
    }
}
