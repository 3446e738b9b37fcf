//! The names and ARNs of everything an environment owns. Names are deterministic under
//! `promo-codes-<env>`: with the `env` tag, they are how a run finds what is its own. ARNs are
//! built with the account's partition (`aws`, `aws-cn`, `aws-us-gov`), never a fixed `arn:aws:`.

use crate::config::EnvName;

pub const APP: &str = "promo-codes";
pub const DATABASE_NAME: &str = "promo_codes";
pub const MASTER_USER: &str = "promo_admin";
/// The database role the API functions connect as (DML only); `migrate` creates it.
pub const APP_USER: &str = "promo_app";
/// The alias API Gateway invokes; it points at the published version that serves.
pub const ALIAS: &str = "live";
/// The name of each role's inline policy.
pub const INLINE_POLICY: &str = "promo-codes";

/// Names of everything an environment owns.
#[derive(Debug, Clone)]
pub struct Names {
    env: EnvName,
    prefix: String,
}

impl Names {
    pub fn new(env: &EnvName) -> Names {
        Names { env: env.clone(), prefix: format!("{APP}-{env}") }
    }

    pub fn env(&self) -> &EnvName {
        &self.env
    }

    pub fn function(&self, crate_name: &str) -> String {
        format!("{}-{crate_name}", self.prefix)
    }

    pub fn role(&self, crate_name: &str) -> String {
        format!("{}-{crate_name}", self.prefix)
    }

    /// IAM path of the environment's roles.
    pub fn role_path(&self) -> String {
        format!("/{APP}/{}/", self.env)
    }

    pub fn cluster(&self) -> String {
        self.prefix.clone()
    }

    pub fn instance(&self) -> String {
        format!("{}-1", self.prefix)
    }

    pub fn subnet_group(&self) -> String {
        self.prefix.clone()
    }

    pub fn api(&self) -> String {
        self.prefix.clone()
    }

    /// The alarm on `metric` (`errors`, `throttles`) of one function, or of the API (`api-5xx`).
    pub fn alarm(&self, subject: &str, metric: &str) -> String {
        format!("{}-{subject}-{metric}", self.prefix)
    }

    /// The secret holding the application role's credentials.
    pub fn app_secret(&self) -> String {
        format!("{}-app-db", self.prefix)
    }
}

/// The partition of a region, for when no ARN of the account has been seen yet.
pub fn partition_of_region(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else if region.starts_with("us-isob-") {
        "aws-iso-b"
    } else if region.starts_with("us-iso-") {
        "aws-iso"
    } else if region.starts_with("eusc-") {
        "aws-eusc"
    } else {
        "aws"
    }
}

/// The partition an ARN names (`arn:<partition>:...`).
pub fn partition_of_arn(arn: &str) -> Option<&str> {
    arn.strip_prefix("arn:")?.split(':').next().filter(|p| !p.is_empty())
}

/// Builds the ARNs of one account and region.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arns {
    pub partition: String,
    pub region: String,
    pub account: String,
}

impl Arns {
    pub fn function(&self, name: &str) -> String {
        format!("arn:{}:lambda:{}:{}:function:{name}", self.partition, self.region, self.account)
    }

    /// A function's ARN with its `live` alias.
    pub fn alias(&self, function: &str) -> String {
        format!("{}:{ALIAS}", self.function(function))
    }

    pub fn role(&self, path: &str, name: &str) -> String {
        format!("arn:{}:iam::{}:role{path}{name}", self.partition, self.account)
    }

    /// An AWS managed policy of the service-role family.
    pub fn managed_policy(&self, name: &str) -> String {
        format!("arn:{}:iam::aws:policy/service-role/{name}", self.partition)
    }

    pub fn rds(&self, kind: &str, name: &str) -> String {
        format!("arn:{}:rds:{}:{}:{kind}:{name}", self.partition, self.region, self.account)
    }

    pub fn rest_api(&self, api_id: &str) -> String {
        format!("arn:{}:apigateway:{}::/restapis/{api_id}", self.partition, self.region)
    }

    pub fn stage(&self, api_id: &str, stage: &str) -> String {
        format!("{}/stages/{stage}", self.rest_api(api_id))
    }

    /// What may invoke a function on behalf of one API: any stage, method and route of it.
    pub fn execute_api(&self, api_id: &str) -> String {
        format!("arn:{}:execute-api:{}:{}:{api_id}/*", self.partition, self.region, self.account)
    }

    /// The domain of the partition's endpoints.
    pub fn dns_suffix(&self) -> &'static str {
        if self.partition == "aws-cn" { "amazonaws.com.cn" } else { "amazonaws.com" }
    }

    /// The AWS_PROXY integration URI that invokes a function's `live` alias.
    pub fn integration_uri(&self, function: &str) -> String {
        format!(
            "arn:{}:apigateway:{}:lambda:path/2015-03-31/functions/{}/invocations",
            self.partition,
            self.region,
            self.alias(function)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arns_carry_the_partition_of_the_account() {
        let arns = Arns { partition: "aws-cn".into(), region: "cn-north-1".into(), account: "123456789012".into() };
        assert_eq!(arns.function("f"), "arn:aws-cn:lambda:cn-north-1:123456789012:function:f");
        assert_eq!(arns.managed_policy("P"), "arn:aws-cn:iam::aws:policy/service-role/P");
        assert_eq!(
            arns.integration_uri("f"),
            "arn:aws-cn:apigateway:cn-north-1:lambda:path/2015-03-31/functions/arn:aws-cn:lambda:cn-north-1:123456789012:function:f:live/invocations"
        );
    }

    #[test]
    fn the_partition_comes_from_an_arn_or_else_the_region() {
        assert_eq!(partition_of_arn("arn:aws-us-gov:sts::123456789012:assumed-role/x"), Some("aws-us-gov"));
        assert_eq!(partition_of_arn("nope"), None);
        assert_eq!(partition_of_region("cn-northwest-1"), "aws-cn");
        assert_eq!(partition_of_region("us-gov-west-1"), "aws-us-gov");
        assert_eq!(partition_of_region("eu-west-1"), "aws");
    }
}
