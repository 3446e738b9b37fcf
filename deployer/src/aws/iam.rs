//! IAM: one execution role per function, with AWS managed policies for logs (and VPC access)
//! and an inline policy that reads exactly the secrets the function needs.

use promo_shared::routes::FUNCTION_CRATES;
use serde_json::Value;

use crate::apply::Context;
use crate::desired::{Known, RoleSpec};
use crate::error::{DeployError, aws};
use crate::names::{INLINE_POLICY, Names};
use crate::plan::{Action, Change};
use crate::tags::Tags;

const LAMBDA_TRUST: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;

/// The environment's roles as IAM holds them: exactly the names it derives.
pub async fn observe(names: &Names, iam: &aws_sdk_iam::Client) -> Result<Vec<RoleSpec>, DeployError> {
    let mut found = Vec::new();
    for crate_name in FUNCTION_CRATES {
        let name = names.role(crate_name);
        let role = match iam.get_role().role_name(&name).send().await {
            Ok(out) => out,
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_entity_exception()) => continue,
            Err(e) => return Err(aws(format!("reading role {name}"))(e)),
        };
        let tags =
            Tags::observed(role.role().map(|r| r.tags()).unwrap_or_default().iter().map(|t| (t.key(), t.value())));
        let mut managed = Vec::new();
        let mut pages = iam.list_attached_role_policies().role_name(&name).into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(aws(format!("reading the policies of role {name}")))?;
            managed.extend(page.attached_policies().iter().filter_map(|p| p.policy_arn().map(str::to_owned)));
        }
        managed.sort();
        let inline_policy = match iam.get_role_policy().role_name(&name).policy_name(INLINE_POLICY).send().await {
            Ok(out) => {
                // IAM returns the document URL-encoded.
                let decoded = percent_encoding::percent_decode_str(out.policy_document()).decode_utf8_lossy();
                Known::Value(serde_json::from_str(&decoded).unwrap_or(Value::Null))
            }
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_entity_exception()) => {
                Known::Value(Value::Null)
            }
            Err(e) => return Err(aws(format!("reading the policy of role {name}"))(e)),
        };
        found.push(RoleSpec { name, managed_policies: managed, inline_policy, tags });
    }
    Ok(found)
}

pub async fn apply(
    ctx: &Context<'_>,
    change: &Change,
    want: &RoleSpec,
    have: Option<&RoleSpec>,
) -> Result<(), DeployError> {
    let iam = &ctx.clients.iam;
    let name = &want.name;
    let tags = |set: &mut dyn Iterator<Item = (&str, &str)>| -> Vec<aws_sdk_iam::types::Tag> {
        set.filter_map(|(k, v)| aws_sdk_iam::types::Tag::builder().key(k).value(v).build().ok()).collect()
    };
    if change.action == Action::Create {
        iam.create_role()
            .role_name(name)
            .path(ctx.names.role_path())
            .assume_role_policy_document(LAMBDA_TRUST)
            .set_tags(Some(tags(&mut want.tags.iter())))
            .send()
            .await
            .map_err(aws(format!("creating role {name}")))?;
    } else if let (true, Some(have)) = (change.changes("tags"), have) {
        let changes = want.tags.changes_from(&have.tags);
        if !changes.remove.is_empty() {
            iam.untag_role()
                .role_name(name)
                .set_tag_keys(Some(changes.remove.clone()))
                .send()
                .await
                .map_err(aws(format!("untagging role {name}")))?;
        }
        if !changes.set.is_empty() {
            iam.tag_role()
                .role_name(name)
                .set_tags(Some(tags(&mut changes.set.iter().map(|(k, v)| (k.as_str(), v.as_str())))))
                .send()
                .await
                .map_err(aws(format!("tagging role {name}")))?;
        }
    }
    let existing = have.map(|h| h.managed_policies.as_slice()).unwrap_or_default();
    for arn in want.managed_policies.iter().filter(|a| !existing.contains(a)) {
        iam.attach_role_policy()
            .role_name(name)
            .policy_arn(arn)
            .send()
            .await
            .map_err(aws(format!("attaching {arn} to {name}")))?;
    }
    for arn in existing.iter().filter(|a| !want.managed_policies.contains(a)) {
        iam.detach_role_policy()
            .role_name(name)
            .policy_arn(arn)
            .send()
            .await
            .map_err(aws(format!("detaching {arn} from {name}")))?;
    }
    if change.changes("inline_policy") {
        let document = want.inline_policy.get(&format!("the policy of {name}"))?.to_string();
        iam.put_role_policy()
            .role_name(name)
            .policy_name(INLINE_POLICY)
            .policy_document(document)
            .send()
            .await
            .map_err(aws(format!("writing the policy of role {name}")))?;
    }
    Ok(())
}

/// Detaches and deletes the role's policies, then the role: IAM refuses to delete a role that
/// still has any.
pub async fn delete(ctx: &Context<'_>, have: &RoleSpec) -> Result<(), DeployError> {
    let iam = &ctx.clients.iam;
    let name = &have.name;
    for arn in &have.managed_policies {
        match iam.detach_role_policy().role_name(name).policy_arn(arn).send().await {
            Ok(_) => {}
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_entity_exception()) => {}
            Err(e) => return Err(aws(format!("detaching {arn} from {name}"))(e)),
        }
    }
    if have.inline_policy != Known::Value(Value::Null) {
        match iam.delete_role_policy().role_name(name).policy_name(INLINE_POLICY).send().await {
            Ok(_) => {}
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_entity_exception()) => {}
            Err(e) => return Err(aws(format!("deleting the policy of role {name}"))(e)),
        }
    }
    match iam.delete_role().role_name(name).send().await {
        Ok(_) => Ok(()),
        Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_entity_exception()) => Ok(()),
        Err(e) => Err(aws(format!("deleting role {name}"))(e)),
    }
}
