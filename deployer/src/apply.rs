//! The phase loop: converges AWS to the environment file in dependency order (database, roles,
//! functions, then the migrations and the alias moves, then the API and its stage), and
//! deletes what the environment no longer has, dependents first. Each kind's calls live in its
//! service's reconciler under `aws/`. A run that stopped half-way is simply planned again:
//! whatever exists is updated, whatever is missing is created.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use crate::aws::{Clients, apigateway, cloudwatch, iam, lambda, rds, secrets};
use crate::config::{EnvName, EnvironmentSpec};
use crate::desired::{Artifacts, Facts, Kind, State, desired};
use crate::diff::Resource;
use crate::error::DeployError;
use crate::migrate::migrate;
use crate::names::{ALIAS, Names};
use crate::observe::{Observed, observe};
use crate::plan::{Action, Change, Plan, plan, steps};
use crate::progress::{Event, Progress};
use crate::release::{Move, release};

/// A built function: its zip and Lambda's `CodeSha256` of it.
#[derive(Debug, Clone)]
pub struct Zip {
    pub path: PathBuf,
    pub code_sha256: String,
}

/// What a deploy did: the plan it carried out, and the migrations the database has.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub plan: Plan,
    pub migrated: bool,
    pub migrations: Vec<i64>,
}

/// What every reconciler works with: the clients, the names, what AWS has told us so far,
/// and where to say what it waits on.
pub struct Context<'a> {
    pub clients: &'a Clients,
    pub names: Names,
    pub facts: Facts,
    pub zips: &'a BTreeMap<String, Zip>,
    pub progress: Progress<'a>,
}

/// Plans a deployment: observes the account, diffs it against the desired state.
pub async fn plan_deploy(
    clients: &Clients,
    env: &EnvName,
    spec: &EnvironmentSpec,
    zips: &BTreeMap<String, Zip>,
) -> Result<(Plan, Observed), DeployError> {
    let observed = observe(clients, env, spec).await?;
    let want = desired(env, spec, &artifacts(zips), &observed.facts);
    Ok((plan(&want, &observed.state), observed))
}

fn artifacts(zips: &BTreeMap<String, Zip>) -> Artifacts {
    zips.iter().map(|(k, z)| (k.clone(), z.code_sha256.clone())).collect()
}

/// Changes AWS cannot make in place: refused before the first write.
fn refuse_impossible(plan: &Plan) -> Result<(), DeployError> {
    if let Some(c) = plan
        .changes
        .iter()
        .find(|c| c.kind == Kind::DbCluster && c.action == Action::Update && c.changes("subnet_group"))
    {
        return Err(DeployError::Refused(format!(
            "{} would move to other subnets, which Aurora cannot do in place: nothing was changed; keep \
             network.subnet_ids as they were, or destroy the environment and deploy it again",
            c.resource
        )));
    }
    Ok(())
}

fn finished(progress: Progress<'_>, change: &Change, started: Instant) {
    let verb = match change.action {
        Action::Create => "created",
        Action::Update => "updated",
        Action::Delete => "deleted",
    };
    progress(Event::Done(&format!("{verb} {}", change.resource)), started.elapsed());
}

/// The creates and updates of one kind: each change, the desired resource, the observed one.
fn writes<'a, R: Resource>(want: &'a [R], have: &'a [R]) -> Vec<(Change, &'a R, Option<&'a R>)> {
    steps(want, have).into_iter().filter_map(|s| Some((s.change, s.want?, s.have))).collect()
}

/// Converges AWS to the environment file.
pub async fn deploy(
    clients: &Clients,
    env: &EnvName,
    spec: &EnvironmentSpec,
    zips: &BTreeMap<String, Zip>,
    progress: Progress<'_>,
) -> Result<Report, DeployError> {
    let (first_plan, observed) = plan_deploy(clients, env, spec, zips).await?;
    refuse_impossible(&first_plan)?;
    let have = &observed.state;
    let mut ctx = Context { clients, names: Names::new(env), facts: observed.facts.clone(), zips, progress };
    let mut report = Report { plan: first_plan.clone(), ..Report::default() };
    let release_id = release_id();
    let migrate_name = ctx.names.function("migrate");

    // Each phase plans against what AWS assigned in the earlier ones (the database endpoint
    // and secret, the API id).
    let want = desired(env, spec, &artifacts(zips), &ctx.facts);
    for (change, w, h) in writes(&want.subnet_groups, &have.subnet_groups) {
        let started = Instant::now();
        rds::apply_subnet_group(&ctx, &change, w, h).await?;
        finished(progress, &change, started);
    }
    for (change, w, h) in writes(&want.clusters, &have.clusters) {
        let started = Instant::now();
        rds::apply_cluster(&ctx, &change, w, h).await?;
        finished(progress, &change, started);
    }
    for (change, w, h) in writes(&want.instances, &have.instances) {
        let started = Instant::now();
        rds::apply_instance(&ctx, &change, w, h).await?;
        finished(progress, &change, started);
    }
    // A run cut short while the database was being created or modified finds it not yet
    // available: wait for it before the roles, functions and migrations that need it.
    if !observed.database_available {
        for cluster in &have.clusters {
            rds::wait_cluster(&ctx, &cluster.name).await?;
        }
        for instance in &have.instances {
            rds::wait_instance(&ctx, &instance.name).await?;
        }
    }
    if ctx.facts.db_endpoint.is_none() || ctx.facts.db_secret_arn.is_none() {
        let database = rds::observe(&ctx.names, &clients.rds).await?;
        ctx.facts.db_endpoint = database.facts.endpoint;
        ctx.facts.db_secret_arn = database.facts.secret_arn;
    }

    for (change, w, h) in writes(&want.secrets, &have.secrets) {
        let started = Instant::now();
        if let Some(arn) = secrets::apply(&ctx, &change, w, h).await? {
            ctx.facts.app_secret_arn = Some(arn);
        }
        finished(progress, &change, started);
    }

    let want = desired(env, spec, &artifacts(zips), &ctx.facts);
    for (change, w, h) in writes(&want.roles, &have.roles) {
        let started = Instant::now();
        iam::apply(&ctx, &change, w, h).await?;
        finished(progress, &change, started);
    }
    let mut moves = Vec::new();
    let mut migrate_move = None;
    for (change, w, h) in writes(&want.functions, &have.functions) {
        let started = Instant::now();
        let moved = lambda::apply(&ctx, &change, w, h).await?;
        finished(progress, &change, started);
        match moved {
            Some(m) if w.name == migrate_name => migrate_move = Some(m),
            Some(m) => moves.push(m),
            None => {}
        }
    }
    // The migrations run before any alias moves, while the previous version still serves:
    // they must keep working with it (expand now, contract in a later release). migrate's own
    // alias moves once its new version ran them, so a run cut short before runs them again.
    let database_created =
        first_plan.touches(Kind::DbCluster, &ctx.names.cluster()).is_some_and(|c| c.action == Action::Create);
    if database_created || first_plan.touches(Kind::Function, &migrate_name).is_some() {
        let started = Instant::now();
        let qualifier = migrate_move.as_ref().map_or(ALIAS, |m: &Move| m.to.as_str());
        let versions = migrate(clients, &migrate_name, qualifier).await?;
        let listed: Vec<String> = versions.iter().map(i64::to_string).collect();
        let line = format!("migrated the database: migration versions {}", listed.join(", "));
        progress(Event::Done(&line), started.elapsed());
        report.migrated = true;
        report.migrations = versions;
    }
    // The alarms exist before a release bakes under them.
    for (change, w, h) in writes(&want.alarms, &have.alarms) {
        let started = Instant::now();
        cloudwatch::apply(&ctx, &change, w, h).await?;
        finished(progress, &change, started);
    }
    if let Some(m) = migrate_move {
        release(clients, &[m], &release_id, None, None, &crate::progress::quiet).await?;
    }
    let watch = crate::release::Watch { env, alarms: &want.alarms };
    release(clients, &moves, &release_id, spec.release, Some(watch), progress).await?;

    for (change, w, h) in writes(&want.apis, &have.apis) {
        let started = Instant::now();
        let api_id = apigateway::apply_api(&ctx, &change, w, h).await?;
        ctx.facts.api_id = Some(api_id);
        finished(progress, &change, started);
    }
    for (change, w, h) in writes(&want.stages, &have.stages) {
        let started = Instant::now();
        apigateway::apply_stage(&ctx, &change, w, h).await?;
        finished(progress, &change, started);
    }

    // Deletes last, dependents first.
    let want = desired(env, spec, &artifacts(zips), &ctx.facts);
    delete_all(&ctx, &want, have).await?;
    Ok(report)
}

/// Deletes what `have` holds and `want` does not, dependents first.
async fn delete_all(ctx: &Context<'_>, want: &State, have: &State) -> Result<(), DeployError> {
    fn gone<'a, R: Resource>(want: &'a [R], have: &'a [R]) -> Vec<(Change, &'a R)> {
        steps(want, have)
            .into_iter()
            .filter_map(|s| s.have.filter(|_| s.change.action == Action::Delete).map(|h| (s.change, h)))
            .collect()
    }
    for (change, h) in gone(&want.alarms, &have.alarms) {
        let started = Instant::now();
        cloudwatch::delete(ctx, h).await?;
        finished(ctx.progress, &change, started);
    }
    for (change, h) in gone(&want.stages, &have.stages) {
        let started = Instant::now();
        apigateway::delete_stage(ctx, h).await?;
        finished(ctx.progress, &change, started);
    }
    for (change, _) in gone(&want.apis, &have.apis) {
        let started = Instant::now();
        apigateway::delete_api(ctx).await?;
        finished(ctx.progress, &change, started);
    }
    for (change, h) in gone(&want.functions, &have.functions) {
        let started = Instant::now();
        lambda::delete(ctx, h).await?;
        finished(ctx.progress, &change, started);
    }
    for (change, h) in gone(&want.roles, &have.roles) {
        let started = Instant::now();
        iam::delete(ctx, h).await?;
        finished(ctx.progress, &change, started);
    }
    for (change, h) in gone(&want.secrets, &have.secrets) {
        let started = Instant::now();
        secrets::delete(ctx, h).await?;
        finished(ctx.progress, &change, started);
    }
    for (change, h) in gone(&want.instances, &have.instances) {
        let started = Instant::now();
        rds::delete_instance(ctx, h).await?;
        finished(ctx.progress, &change, started);
    }
    for (change, h) in gone(&want.clusters, &have.clusters) {
        let started = Instant::now();
        rds::delete_cluster(ctx, h).await?;
        finished(ctx.progress, &change, started);
    }
    for (change, h) in gone(&want.subnet_groups, &have.subnet_groups) {
        let started = Instant::now();
        rds::delete_subnet_group(ctx, h).await?;
        finished(ctx.progress, &change, started);
    }
    Ok(())
}

/// Deletes everything the environment owns, dependents first. A protected database (in the
/// file or in AWS) is refused before anything is deleted.
pub async fn destroy(
    clients: &Clients,
    env: &EnvName,
    spec: &EnvironmentSpec,
    progress: Progress<'_>,
) -> Result<Report, DeployError> {
    let observed = observe(clients, env, spec).await?;
    let names = Names::new(env);
    let protected_in_aws = observed.state.clusters.iter().any(|c| c.deletion_protection);
    let how = if spec.database.deletion_protection {
        Some(format!(
            "environments/{env}.yaml sets database.deletion_protection: true; set it to false and deploy, then destroy"
        ))
    } else if protected_in_aws {
        Some("the cluster has deletion protection on in AWS; deploy (the file says false, which turns it off), then destroy".to_owned())
    } else {
        None
    };
    if let Some(how) = how {
        let cluster = names.cluster();
        return Err(DeployError::Refused(format!(
            "aurora cluster {cluster} is protected, so nothing was deleted: {how}"
        )));
    }
    let plan = plan(&State::default(), &observed.state);
    let ctx = Context { clients, names, facts: observed.facts.clone(), zips: &BTreeMap::new(), progress };
    delete_all(&ctx, &State::default(), &observed.state).await?;
    Ok(Report { plan, ..Report::default() })
}

/// Names this deploy's alias moves, so rollback can find them: the start time in ms.
fn release_id() -> String {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis().to_string())
        .unwrap_or_default()
}
