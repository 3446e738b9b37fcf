//! Unit tests of the reconcilers with recorded SDK traffic (aws-smithy-mocks): exactly which
//! calls each makes, with which fields, for the cases a real account is strict about. A call
//! no rule expects fails the test.

use std::collections::BTreeMap;

use aws_sdk_iam::operation::untag_role::UntagRoleOutput;
use aws_sdk_lambda::operation::create_alias::CreateAliasOutput;
use aws_sdk_lambda::operation::create_function::{CreateFunctionError, CreateFunctionOutput};
use aws_sdk_lambda::operation::get_alias::GetAliasError;
use aws_sdk_lambda::operation::get_function_configuration::GetFunctionConfigurationOutput;
use aws_sdk_lambda::operation::publish_version::PublishVersionOutput;
use aws_sdk_lambda::types::State;
use aws_sdk_rds::operation::describe_db_clusters::DescribeDbClustersOutput;
use aws_sdk_rds::operation::modify_db_cluster::ModifyDbClusterOutput;
use aws_sdk_rds::types::DbCluster;
use aws_smithy_mocks::{MockResponseInterceptor, Rule, RuleMode, create_mock_http_client, mock};

use crate::apply::{Context, Zip};
use crate::aws::{CallLog, Clients};
use crate::config::{EngineVersion, EnvName};
use crate::desired::{ClusterSpec, Facts, FunctionSpec, Known, LiveAlias, RoleSpec};
use crate::names::{Arns, Names};
use crate::plan::{Action, Change};
use crate::tags::Tags;

/// Clients whose every call is answered by `rules`, or fails the test.
async fn clients(rules: &[&Rule]) -> Clients {
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("cn-north-1"))
        .credentials_provider(aws_sdk_sts::config::Credentials::new("a", "b", None, None, "test"))
        .http_client(create_mock_http_client())
        .load()
        .await;
    let interceptor =
        || rules.iter().fold(MockResponseInterceptor::new().rule_mode(RuleMode::MatchAny), |i, r| i.with_rule(r));
    let log = CallLog::default();
    macro_rules! client {
        ($sdk:ident) => {
            $sdk::Client::from_conf(
                $sdk::config::Builder::from(&config).interceptor(interceptor()).interceptor(log.clone()).build(),
            )
        };
    }
    Clients {
        iam: client!(aws_sdk_iam),
        lambda: client!(aws_sdk_lambda),
        rds: client!(aws_sdk_rds),
        apigateway: client!(aws_sdk_apigateway),
        sts: client!(aws_sdk_sts),
        secretsmanager: client!(aws_sdk_secretsmanager),
        logs: client!(aws_sdk_cloudwatchlogs),
        cloudwatch: client!(aws_sdk_cloudwatch),
        region: "cn-north-1".into(),
        log,
        timing: crate::aws::Timing::EMULATOR,
        emulator: None,
    }
}

fn context<'a>(clients: &'a Clients, zips: &'a BTreeMap<String, Zip>) -> Context<'a> {
    let env = EnvName::parse("unit").unwrap();
    Context {
        clients,
        names: Names::new(&env),
        facts: Facts {
            arns: Arns { partition: "aws-cn".into(), region: "cn-north-1".into(), account: "123456789012".into() },
            db_endpoint: Some("db.example".into()),
            db_secret_arn: Some("arn:aws-cn:secretsmanager:cn-north-1:123456789012:secret:db".into()),
            app_secret_arn: Some("arn:aws-cn:secretsmanager:cn-north-1:123456789012:secret:app".into()),
            api_id: Some("api123".into()),
        },
        zips,
        progress: &crate::progress::quiet,
    }
}

fn update(fields: &[&str]) -> Change {
    Change {
        action: Action::Update,
        kind: crate::desired::Kind::DbCluster,
        name: String::new(),
        resource: String::new(),
        fields: fields.iter().map(|f| f.to_string()).collect(),
        notes: Vec::new(),
    }
}

fn tags(extra: &[(&str, &str)]) -> Tags {
    let mut file: BTreeMap<String, String> = extra.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    file.insert("team".into(), "growth".into());
    Tags::for_env(&EnvName::parse("unit").unwrap(), &file)
}

fn cluster(version: &str) -> ClusterSpec {
    ClusterSpec {
        name: "promo-codes-unit".into(),
        engine_version: EngineVersion::observed(version),
        min_capacity: Some(0.0),
        max_capacity: Some(2.0),
        deletion_protection: false,
        backup_retention_days: 1,
        subnet_group: None,
        security_group_ids: Vec::new(),
        tags: tags(&[]),
    }
}

fn available() -> Rule {
    mock!(aws_sdk_rds::Client::describe_db_clusters)
        .sequence()
        .output(|| {
            DescribeDbClustersOutput::builder()
                .db_clusters(DbCluster::builder().db_cluster_identifier("promo-codes-unit").status("available").build())
                .build()
        })
        .repeatedly()
        .build()
}

#[tokio::test]
async fn a_cluster_aws_upgraded_past_the_file_is_modified_without_an_engine_version() {
    let modify = mock!(aws_sdk_rds::Client::modify_db_cluster)
        .match_requests(|r| {
            r.engine_version().is_none()
                && r.allow_major_version_upgrade().is_none()
                && r.serverless_v2_scaling_configuration().and_then(|s| s.max_capacity()) == Some(2.0)
        })
        .then_output(|| ModifyDbClusterOutput::builder().build());
    let clients = clients(&[&modify, &available()]).await;
    let zips = BTreeMap::new();
    let ctx = context(&clients, &zips);
    let want = cluster("16.4");
    let mut have = cluster("16.6");
    have.max_capacity = Some(1.0);
    super::rds::apply_cluster(&ctx, &update(&want.diff_names(&have)), &want, Some(&have)).await.unwrap();
    assert_eq!(modify.num_calls(), 1);
    assert_eq!(clients.log.writes(), ["RDS:ModifyDBCluster"]);
}

#[tokio::test]
async fn a_major_upgrade_the_file_asks_for_sends_the_version_and_allows_it() {
    let modify = mock!(aws_sdk_rds::Client::modify_db_cluster)
        .match_requests(|r| r.engine_version() == Some("17.2") && r.allow_major_version_upgrade() == Some(true))
        .then_output(|| ModifyDbClusterOutput::builder().build());
    let clients = clients(&[&modify, &available()]).await;
    let zips = BTreeMap::new();
    let ctx = context(&clients, &zips);
    let want = ClusterSpec { engine_version: "17.2".to_owned().try_into().unwrap(), ..cluster("") };
    let have = cluster("16.6");
    assert_eq!(want.diff_names(&have), ["engine_version"]);
    super::rds::apply_cluster(&ctx, &update(&["engine_version"]), &want, Some(&have)).await.unwrap();
    assert_eq!(modify.num_calls(), 1);
}

#[tokio::test]
async fn a_tag_removed_from_the_file_is_untagged_on_the_cluster_with_the_partition_s_arn() {
    let remove = mock!(aws_sdk_rds::Client::remove_tags_from_resource)
        .match_requests(|r| {
            r.resource_name() == Some("arn:aws-cn:rds:cn-north-1:123456789012:cluster:promo-codes-unit")
                && r.tag_keys() == ["owner"]
        })
        .then_output(|| {
            aws_sdk_rds::operation::remove_tags_from_resource::RemoveTagsFromResourceOutput::builder().build()
        });
    let clients = clients(&[&remove, &available()]).await;
    let zips = BTreeMap::new();
    let ctx = context(&clients, &zips);
    let want = cluster("16.4");
    let have = ClusterSpec { tags: tags(&[("owner", "x")]), ..cluster("16.4") };
    super::rds::apply_cluster(&ctx, &update(&["tags"]), &want, Some(&have)).await.unwrap();
    assert_eq!(clients.log.writes(), ["RDS:RemoveTagsFromResource"], "no ModifyDBCluster, no AddTagsToResource");
}

#[tokio::test]
async fn a_tag_removed_from_the_file_is_untagged_on_a_role() {
    let untag = mock!(aws_sdk_iam::Client::untag_role)
        .match_requests(|r| r.role_name() == Some("promo-codes-unit-list") && r.tag_keys() == ["owner"])
        .then_output(|| UntagRoleOutput::builder().build());
    let clients = clients(&[&untag]).await;
    let zips = BTreeMap::new();
    let ctx = context(&clients, &zips);
    let role = |tags| RoleSpec {
        name: "promo-codes-unit-list".into(),
        managed_policies: Vec::new(),
        inline_policy: Known::Value(serde_json::Value::Null),
        tags,
    };
    super::iam::apply(&ctx, &update(&["tags"]), &role(tags(&[])), Some(&role(tags(&[("owner", "x")])))).await.unwrap();
    assert_eq!(clients.log.writes(), ["IAM:UntagRole"]);
}

fn function() -> FunctionSpec {
    FunctionSpec {
        name: "promo-codes-unit-list".into(),
        crate_name: "list".into(),
        role: "promo-codes-unit-list".into(),
        runtime: "provided.al2023".into(),
        handler: "bootstrap".into(),
        architecture: "arm64".into(),
        memory_mb: 256,
        timeout_seconds: 10,
        reserved_concurrency: None,
        env: BTreeMap::from([("DB_HOST".to_owned(), Known::Value("db.example".to_owned()))]),
        subnet_ids: Vec::new(),
        security_group_ids: Vec::new(),
        code_sha256: "abc".into(),
        live: LiveAlias::Current,
        tags: tags(&[]),
    }
}

fn zips(dir: &std::path::Path) -> BTreeMap<String, Zip> {
    let path = dir.join("list.zip");
    std::fs::write(&path, b"not really a zip").unwrap();
    BTreeMap::from([("list".to_owned(), Zip { path, code_sha256: "abc".into() })])
}

fn invalid_parameter(message: &'static str) -> CreateFunctionError {
    CreateFunctionError::InvalidParameterValueException(
        aws_sdk_lambda::types::error::InvalidParameterValueException::builder().message(message).build(),
    )
}

#[tokio::test]
async fn create_function_is_retried_while_lambda_cannot_assume_the_new_role() {
    let create = mock!(aws_sdk_lambda::Client::create_function)
        .match_requests(|r| {
            r.role() == Some("arn:aws-cn:iam::123456789012:role/promo-codes/unit/promo-codes-unit-list")
        })
        .sequence()
        .error(|| invalid_parameter("The role defined for the function cannot be assumed by Lambda."))
        .output(|| CreateFunctionOutput::builder().build())
        .build();
    // The new function, then its first version: Pending once each, then Active.
    let active = mock!(aws_sdk_lambda::Client::get_function_configuration)
        .sequence()
        .output(|| GetFunctionConfigurationOutput::builder().state(State::Pending).build())
        .output(|| GetFunctionConfigurationOutput::builder().state(State::Active).build())
        .output(|| GetFunctionConfigurationOutput::builder().state(State::Pending).build())
        .output(|| GetFunctionConfigurationOutput::builder().state(State::Active).build())
        .build();
    let publish = mock!(aws_sdk_lambda::Client::publish_version)
        .match_requests(|r| r.code_sha256() == Some("abc"))
        .then_output(|| PublishVersionOutput::builder().version("1").build());
    let no_alias = mock!(aws_sdk_lambda::Client::get_alias).then_error(|| {
        GetAliasError::ResourceNotFoundException(
            aws_sdk_lambda::types::error::ResourceNotFoundException::builder().build(),
        )
    });
    let alias = mock!(aws_sdk_lambda::Client::create_alias)
        .match_requests(|r| r.function_version() == Some("1") && r.name() == Some("live"))
        .then_output(|| CreateAliasOutput::builder().build());
    let clients = clients(&[&create, &active, &publish, &no_alias, &alias]).await;
    let dir = std::env::temp_dir().join(format!("promo-mocked-retry-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let zips = zips(&dir);
    let ctx = context(&clients, &zips);
    let mut created = update(&[]);
    created.action = Action::Create;
    let moved = super::lambda::apply(&ctx, &created, &function(), None).await.unwrap();
    assert_eq!(moved, None, "a new function's alias is made at once");
    assert_eq!(create.num_calls(), 2, "retried once the role could be assumed");
    assert_eq!(alias.num_calls(), 1);
    assert_eq!(active.num_calls(), 4, "waited for the function, then for its version, to be Active");
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn create_function_fails_at_once_on_any_other_invalid_parameter_with_aws_message() {
    let create = mock!(aws_sdk_lambda::Client::create_function)
        .then_error(|| invalid_parameter("Unzipped size must be smaller than 262144000 bytes"));
    let clients = clients(&[&create]).await;
    let dir = std::env::temp_dir().join(format!("promo-mocked-invalid-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let zips = zips(&dir);
    let ctx = context(&clients, &zips);
    let mut created = update(&[]);
    created.action = Action::Create;
    let error = super::lambda::apply(&ctx, &created, &function(), None).await.unwrap_err();
    assert_eq!(create.num_calls(), 1, "not retried");
    let report = error.report();
    assert!(report.contains("creating function promo-codes-unit-list"), "{report}");
    assert!(report.contains("Unzipped size must be smaller than 262144000 bytes"), "{report}");
    let _ = std::fs::remove_dir_all(dir);
}
