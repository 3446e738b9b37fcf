//! The plan: a pure, field-by-field diff of the desired state against what AWS holds.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;
use serde_json::Value;

use crate::desired::{Kind, Resource, UNKNOWN};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Create,
    Update,
    Delete,
}

/// One change: what happens to which resource, and which of its fields differ.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    pub action: Action,
    pub kind: Kind,
    pub name: String,
    /// `"<kind> <name>"`, as `plan --json` prints it.
    pub resource: String,
    pub fields: Vec<String>,
}

/// Every change `deploy` would make, in the order it makes them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Plan {
    pub changes: Vec<Change>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    pub fn touches(&self, kind: Kind, name: &str) -> Option<&Change> {
        self.changes.iter().find(|c| c.kind == kind && c.name == name)
    }
}

/// Compares `desired` with `observed` (what exists of this environment). Creates and updates
/// come in creation order; deletes after them, in reverse order.
pub fn plan(desired: &[Resource], observed: &[Resource]) -> Plan {
    let observed_by_key: BTreeMap<(Kind, &str), &Resource> =
        observed.iter().map(|r| ((r.kind, r.name.as_str()), r)).collect();
    let mut changes = Vec::new();
    let mut ordered: Vec<&Resource> = desired.iter().collect();
    ordered.sort_by_key(|r| r.kind);
    for want in ordered {
        match observed_by_key.get(&(want.kind, want.name.as_str())) {
            None => changes.push(change(Action::Create, want, want.props.keys().cloned().collect())),
            Some(have) => {
                let fields: Vec<String> = want
                    .props
                    .iter()
                    .filter(|(key, value)| differs(value, have.props.get(*key)))
                    .map(|(key, _)| key.clone())
                    .collect();
                if !fields.is_empty() {
                    changes.push(change(Action::Update, want, fields));
                }
            }
        }
    }
    let desired_keys: Vec<(Kind, &str)> = desired.iter().map(|r| (r.kind, r.name.as_str())).collect();
    let mut deletes: Vec<&Resource> =
        observed.iter().filter(|r| !desired_keys.contains(&(r.kind, r.name.as_str()))).collect();
    deletes.sort_by_key(|r| std::cmp::Reverse(r.kind));
    for gone in deletes {
        changes.push(change(Action::Delete, gone, Vec::new()));
    }
    Plan { changes }
}

/// A desired value differs from the observed one; a value only known after apply differs
/// unless the resource already holds something there.
fn differs(want: &Value, have: Option<&Value>) -> bool {
    match have {
        None => true,
        Some(have) => !same(want, have),
    }
}

fn same(want: &Value, have: &Value) -> bool {
    match (want, have) {
        (Value::String(w), _) if w == UNKNOWN => !have.is_null(),
        (Value::Object(w), Value::Object(h)) => {
            w.len() == h.len() && w.iter().all(|(k, v)| h.get(k).is_some_and(|hv| same(v, hv)))
        }
        (Value::Array(w), Value::Array(h)) => w.len() == h.len() && w.iter().zip(h).all(|(a, b)| same(a, b)),
        (Value::Number(w), Value::Number(h)) => w.as_f64() == h.as_f64(),
        _ => want == have,
    }
}

fn change(action: Action, resource: &Resource, fields: Vec<String>) -> Change {
    Change {
        action,
        kind: resource.kind,
        name: resource.name.clone(),
        resource: format!("{} {}", resource.kind.label(), resource.name),
        fields,
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.changes.is_empty() {
            return writeln!(f, "No changes: AWS matches the environment file.");
        }
        for c in &self.changes {
            let sign = match c.action {
                Action::Create => "+",
                Action::Update => "~",
                Action::Delete => "-",
            };
            write!(f, "{sign} {:?} {}", c.action, c.resource)?;
            if c.action == Action::Update {
                write!(f, " ({})", c.fields.join(", "))?;
            }
            writeln!(f)?;
        }
        let count = |a: Action| self.changes.iter().filter(|c| c.action == a).count();
        writeln!(
            f,
            "Plan: {} to create, {} to update, {} to delete.",
            count(Action::Create),
            count(Action::Update),
            count(Action::Delete)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{EnvName, EnvironmentSpec};
    use crate::desired::{Facts, desired};
    use serde_json::json;

    fn spec() -> EnvironmentSpec {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../environments/emulator.yaml");
        EnvironmentSpec::parse(std::path::Path::new(path), &std::fs::read_to_string(path).unwrap()).unwrap()
    }

    fn facts() -> Facts {
        Facts {
            account_id: "123456789012".into(),
            db_endpoint: Some("db.example".into()),
            db_secret_arn: Some("arn:aws:secretsmanager:us-east-1:123456789012:secret:db".into()),
            api_id: Some("abc123".into()),
        }
    }

    fn artifacts() -> crate::desired::Artifacts {
        promo_core::routes::FUNCTION_CRATES.iter().map(|f| (f.to_string(), format!("sha-{f}"))).collect()
    }

    fn state(spec: &EnvironmentSpec) -> Vec<Resource> {
        desired(&EnvName::parse("emulator").unwrap(), spec, &artifacts(), &facts())
    }

    #[test]
    fn from_nothing_everything_is_created_in_dependency_order() {
        let plan = plan(&state(&spec()), &[]);
        assert!(plan.changes.iter().all(|c| c.action == Action::Create));
        let kinds: Vec<Kind> = plan.changes.iter().map(|c| c.kind).collect();
        let mut sorted = kinds.clone();
        sorted.sort();
        assert_eq!(kinds, sorted, "roles before the database before functions before the API");
        assert_eq!(plan.changes.iter().filter(|c| c.kind == Kind::Function).count(), 6);
    }

    #[test]
    fn an_identical_state_plans_nothing() {
        let s = state(&spec());
        assert!(plan(&s, &s).is_empty());
    }

    #[test]
    fn one_changed_setting_is_exactly_one_update_of_that_field() {
        let before = state(&spec());
        let mut changed = spec();
        changed.functions.overrides.insert("validate".into(), serde_yaml::from_str("memory_mb: 1024").unwrap());
        let plan = plan(&state(&changed), &before);
        assert_eq!(plan.changes.len(), 1, "{plan}");
        let c = &plan.changes[0];
        assert_eq!(
            (c.action, c.kind, c.name.as_str()),
            (Action::Update, Kind::Function, "promo-codes-emulator-validate")
        );
        assert_eq!(c.fields, ["memory_mb"]);
    }

    #[test]
    fn what_the_environment_no_longer_has_is_deleted_last_in_reverse_order() {
        let mut observed = state(&spec());
        observed.push(Resource {
            kind: Kind::Function,
            name: "promo-codes-emulator-old".into(),
            props: Default::default(),
        });
        observed.push(Resource {
            kind: Kind::Role,
            name: "promo-codes-emulator-old".into(),
            props: Default::default(),
        });
        let plan = plan(&state(&spec()), &observed);
        let deletes: Vec<(Action, Kind)> = plan.changes.iter().map(|c| (c.action, c.kind)).collect();
        assert_eq!(deletes, [(Action::Delete, Kind::Function), (Action::Delete, Kind::Role)]);
    }

    #[test]
    fn a_value_known_only_after_apply_matches_whatever_aws_holds() {
        assert!(same(&json!(UNKNOWN), &json!("arn:something")));
        assert!(!same(&json!(UNKNOWN), &Value::Null));
        assert!(same(&json!(1.0), &json!(1)));
        assert!(!same(&json!({"a": 1}), &json!({"a": 1, "b": 2})));
    }

    #[test]
    fn the_plan_prints_one_line_per_change_and_serialises_for_ci() {
        let mut changed = spec();
        changed.api.throttling.rate_limit = 75.0;
        let plan = plan(&state(&changed), &state(&spec()));
        assert_eq!(
            plan.to_string(),
            "~ Update api stage v1 (rate_limit)\nPlan: 0 to create, 1 to update, 0 to delete.\n"
        );
        let json = serde_json::to_value(&plan).unwrap();
        assert_eq!(json["changes"][0]["action"], "update");
        assert_eq!(json["changes"][0]["fields"], json!(["rate_limit"]));
    }
}
