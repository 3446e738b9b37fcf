//! The plan: a pure, field-by-field diff of the desired state against what AWS holds.

use std::fmt;

use serde::Serialize;

use crate::desired::{Kind, State};
use crate::diff::Resource;

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
    /// What a field's change means when its name does not say enough (a major upgrade).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

impl Change {
    pub fn changes(&self, field: &str) -> bool {
        self.action == Action::Create || self.fields.iter().any(|f| f == field)
    }
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

/// One change with the desired and observed resource it is about.
pub struct Step<'a, R> {
    pub change: Change,
    pub want: Option<&'a R>,
    pub have: Option<&'a R>,
}

/// The changes of one kind: creates and updates of what is desired, in its order, then the
/// deletes of what exists and is no longer desired.
pub fn steps<'a, R: Resource>(want: &'a [R], have: &'a [R]) -> Vec<Step<'a, R>> {
    let mut steps = Vec::new();
    for w in want {
        match have.iter().find(|h| h.name() == w.name()) {
            None => steps.push(Step {
                change: change::<R>(Action::Create, w.name(), Vec::new()),
                want: Some(w),
                have: None,
            }),
            Some(h) => {
                let fields = w.diff(h);
                if !fields.is_empty() {
                    steps.push(Step {
                        change: change::<R>(Action::Update, w.name(), fields),
                        want: Some(w),
                        have: Some(h),
                    });
                }
            }
        }
    }
    for h in have.iter().filter(|h| !want.iter().any(|w| w.name() == h.name())) {
        steps.push(Step { change: change::<R>(Action::Delete, h.name(), Vec::new()), want: None, have: Some(h) });
    }
    steps
}

fn change<R: Resource>(action: Action, name: &str, fields: Vec<crate::diff::Field>) -> Change {
    Change {
        action,
        kind: R::KIND,
        name: name.to_owned(),
        resource: format!("{} {name}", R::KIND.label()),
        notes: fields.iter().filter_map(|f| f.note.clone()).collect(),
        fields: fields.into_iter().map(|f| f.name.to_owned()).collect(),
    }
}

/// The changes of every kind: creates and updates in creation order, then deletes in reverse.
pub fn plan(desired: &State, observed: &State) -> Plan {
    fn changes<R: Resource>(want: &[R], have: &[R]) -> Vec<Change> {
        steps(want, have).into_iter().map(|s| s.change).collect()
    }
    let mut all = Vec::new();
    all.extend(changes(&desired.subnet_groups, &observed.subnet_groups));
    all.extend(changes(&desired.clusters, &observed.clusters));
    all.extend(changes(&desired.instances, &observed.instances));
    all.extend(changes(&desired.secrets, &observed.secrets));
    all.extend(changes(&desired.roles, &observed.roles));
    all.extend(changes(&desired.functions, &observed.functions));
    all.extend(changes(&desired.apis, &observed.apis));
    all.extend(changes(&desired.stages, &observed.stages));
    all.extend(changes(&desired.alarms, &observed.alarms));
    let (mut deletes, mut changes): (Vec<Change>, Vec<Change>) =
        all.into_iter().partition(|c| c.action == Action::Delete);
    changes.sort_by_key(|c| c.kind);
    deletes.sort_by_key(|c| std::cmp::Reverse(c.kind));
    changes.extend(deletes);
    Plan { changes }
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
            for note in &c.notes {
                write!(f, ": {note}")?;
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
    use crate::desired::{Facts, FunctionSpec, desired};
    use crate::names::Arns;

    fn spec() -> EnvironmentSpec {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../environments/emulator.yaml");
        EnvironmentSpec::parse(std::path::Path::new(path), &std::fs::read_to_string(path).unwrap()).unwrap()
    }

    fn facts() -> Facts {
        Facts {
            arns: Arns { partition: "aws".into(), region: "us-east-1".into(), account: "123456789012".into() },
            db_endpoint: Some("db.example".into()),
            db_secret_arn: Some("arn:aws:secretsmanager:us-east-1:123456789012:secret:db".into()),
            app_secret_arn: Some("arn:aws:secretsmanager:us-east-1:123456789012:secret:app".into()),
            api_id: Some("abc123".into()),
        }
    }

    fn artifacts() -> crate::desired::Artifacts {
        promo_shared::routes::FUNCTION_CRATES.iter().map(|f| (f.to_string(), format!("sha-{f}"))).collect()
    }

    fn state(spec: &EnvironmentSpec) -> State {
        desired(&EnvName::parse("emulator").unwrap(), spec, &artifacts(), &facts())
    }

    #[test]
    fn from_nothing_everything_is_created_in_dependency_order() {
        let plan = plan(&state(&spec()), &State::default());
        assert!(plan.changes.iter().all(|c| c.action == Action::Create));
        let kinds: Vec<Kind> = plan.changes.iter().map(|c| c.kind).collect();
        let mut sorted = kinds.clone();
        sorted.sort();
        assert_eq!(kinds, sorted, "the database before roles before functions before the API");
        assert_eq!(plan.changes.iter().filter(|c| c.kind == Kind::Function).count(), 6);
    }

    #[test]
    fn only_migrate_may_read_the_master_secret_and_the_api_functions_get_the_app_role_s() {
        let s = state(&spec());
        let f = facts();
        let (master, app) = (f.db_secret_arn.unwrap(), f.app_secret_arn.unwrap());
        for role in &s.roles {
            let policy = match &role.inline_policy {
                crate::desired::Known::Value(p) => p["Statement"][0]["Resource"].clone(),
                other => panic!("{other:?}"),
            };
            let expected = if role.name.ends_with("-migrate") { vec![&master, &app] } else { vec![&app] };
            assert_eq!(policy, serde_json::json!(expected), "{}", role.name);
        }
        for function in &s.functions {
            let secret = function.env["DB_SECRET_ARN"].to_string();
            let migrate = function.crate_name == "migrate";
            assert_eq!(secret, if migrate { &master } else { &app }.as_str(), "{}", function.name);
            assert_eq!(function.env.contains_key("DB_APP_SECRET_ARN"), migrate, "{}", function.name);
        }
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
        let mut old_function: FunctionSpec = observed.functions[0].clone();
        old_function.name = "promo-codes-emulator-old".into();
        observed.functions.push(old_function);
        let mut old_role = observed.roles[0].clone();
        old_role.name = "promo-codes-emulator-old".into();
        observed.roles.push(old_role);
        let plan = plan(&state(&spec()), &observed);
        let deletes: Vec<(Action, Kind)> = plan.changes.iter().map(|c| (c.action, c.kind)).collect();
        assert_eq!(deletes, [(Action::Delete, Kind::Function), (Action::Delete, Kind::Role)]);
    }

    #[test]
    fn a_value_known_only_after_apply_is_a_change() {
        let observed = state(&spec());
        let mut unknown = facts();
        unknown.db_endpoint = None;
        let want = desired(&EnvName::parse("emulator").unwrap(), &spec(), &artifacts(), &unknown);
        let plan = plan(&want, &observed);
        assert!(plan.changes.iter().all(|c| c.kind == Kind::Function && c.fields == ["env"]), "{plan}");
        assert_eq!(plan.changes.len(), 6);
    }

    #[test]
    fn a_tag_gone_from_the_file_is_an_update_of_tags_on_every_kind() {
        // With a canary, so that the release alarms exist too.
        let mut file = spec();
        file.release = Some(serde_yaml::from_str("{canary_percent: 10, bake_seconds: 60}").unwrap());
        let mut tagged = file.clone();
        tagged.tags.insert("owner".into(), "growth".into());
        let plan = plan(&state(&file), &state(&tagged));
        assert!(plan.changes.iter().all(|c| c.action == Action::Update && c.fields == ["tags"]), "{plan}");
        let kinds: std::collections::BTreeSet<Kind> = plan.changes.iter().map(|c| c.kind).collect();
        assert_eq!(kinds.len(), Kind::ALL.len() - 1, "every kind but the subnet group (no VPC here): {plan}");
    }

    #[test]
    fn a_canary_brings_its_alarms_and_turning_them_off_deletes_them() {
        let mut file = spec();
        assert!(state(&file).alarms.is_empty(), "no canary, no alarms");
        file.release = Some(serde_yaml::from_str("{canary_percent: 10, bake_seconds: 60}").unwrap());
        let with = state(&file);
        let names: Vec<&str> = with.alarms.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(names.len(), 11, "errors and throttles of 5 functions, and the API's 5XX: {names:?}");
        assert!(
            names.contains(&"promo-codes-emulator-validate-errors") && names.contains(&"promo-codes-emulator-api-5xx")
        );
        let validate = with.alarms.iter().find(|a| a.name == "promo-codes-emulator-validate-throttles").unwrap();
        assert_eq!(
            validate.dimensions,
            [
                ("FunctionName".to_owned(), "promo-codes-emulator-validate".to_owned()),
                ("Resource".to_owned(), "promo-codes-emulator-validate:live".to_owned())
            ]
        );
        file.release = Some(serde_yaml::from_str("{canary_percent: 10, bake_seconds: 60, alarms: false}").unwrap());
        let plan = plan(&state(&file), &with);
        assert_eq!(plan.changes.len(), 11, "{plan}");
        assert!(plan.changes.iter().all(|c| c.action == Action::Delete && c.kind == Kind::Alarm), "{plan}");
    }

    #[test]
    fn an_engine_version_newer_than_the_file_is_no_change_and_an_older_one_an_upgrade() {
        let want = state(&spec());
        let mut newer = want.clone();
        newer.clusters[0].engine_version = crate::config::EngineVersion::observed("16.6");
        assert!(plan(&want, &newer).is_empty(), "AWS upgraded the minor version itself: nothing to do");

        let mut file = spec();
        file.database.engine_version = "17.2".to_owned().try_into().unwrap();
        let plan = plan(&state(&file), &newer);
        assert_eq!(plan.changes.len(), 1, "{plan}");
        assert_eq!(plan.changes[0].fields, ["engine_version"]);
        assert!(plan.to_string().contains("MAJOR version upgrade 16.6 -> 17.2"), "{plan}");
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
        assert_eq!(json["changes"][0]["fields"], serde_json::json!(["rate_limit"]));
    }
}
