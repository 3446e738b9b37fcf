//! The AWS side of the deployer: the clients of one deployment, from the SDK's standard chain
//! (`AWS_PROFILE`, `AWS_REGION`, credentials, `AWS_ENDPOINT_URL`), each counting the calls it
//! makes; and one reconciler per AWS service, each with the create, update, delete and reads of
//! its resource kinds side by side, its waits and its retry rules.

pub mod apigateway;
pub mod cloudwatch;
pub mod iam;
pub mod lambda;
pub mod rds;
pub mod retry;
pub mod secrets;
pub mod wait;

#[cfg(test)]
mod mocked;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::FinalizerInterceptorContextRef;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;

/// Every AWS operation called, as `service:Operation`, in order.
#[derive(Debug, Clone, Default)]
pub struct CallLog(Arc<Mutex<Vec<String>>>);

impl CallLog {
    pub fn calls(&self) -> Vec<String> {
        self.0.lock().map(|c| c.clone()).unwrap_or_default()
    }

    /// Calls that change something: anything but Get*, List*, Describe*.
    pub fn writes(&self) -> Vec<String> {
        self.calls().into_iter().filter(|c| is_write(c)).collect()
    }
}

pub fn is_write(call: &str) -> bool {
    let operation = call.rsplit(':').next().unwrap_or(call);
    !["Get", "List", "Describe"].iter().any(|p| operation.starts_with(p))
}

impl Intercept for CallLog {
    fn name(&self) -> &'static str {
        "CallLog"
    }

    // The operation's metadata is in the config bag once the operation has run (this is where
    // the SDK's own metrics read it too); every operation passes here exactly once.
    fn read_after_execution(
        &self,
        _context: &FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let call = match cfg.load::<Metadata>() {
            Some(meta) => format!("{}:{}", meta.service(), meta.name()),
            None => "unknown:Unknown".to_owned(),
        };
        if let Ok(mut calls) = self.0.lock() {
            calls.push(call);
        }
        Ok(())
    }
}

/// How often the deployer polls and how it paces retries: AWS's own pace, or an emulator's,
/// whose states last seconds instead of minutes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Timing {
    /// Aurora takes minutes: poll at a fixed interval, not the SDK waiters' doubling one.
    pub rds_poll: Duration,
    pub lambda_poll: Duration,
    /// The pause between CreateFunction calls while Lambda cannot assume a new role yet.
    pub role_retry: Duration,
    /// The first pause after a throttled call that names no Retry-After; it doubles from there.
    pub throttle_pause: Duration,
    /// How often a canary's bake looks at its alarms.
    pub alarm_poll: Duration,
}

impl Timing {
    pub const AWS: Timing = Timing {
        rds_poll: Duration::from_secs(15),
        lambda_poll: Duration::from_secs(1),
        role_retry: Duration::from_secs(2),
        throttle_pause: Duration::from_secs(2),
        alarm_poll: Duration::from_secs(10),
    };
    pub const EMULATOR: Timing = Timing {
        rds_poll: Duration::from_millis(500),
        lambda_poll: Duration::from_millis(200),
        role_retry: Duration::from_millis(500),
        throttle_pause: Duration::from_millis(500),
        alarm_poll: Duration::from_millis(500),
    };
}

/// The clients a deployment uses.
#[derive(Debug, Clone)]
pub struct Clients {
    pub iam: aws_sdk_iam::Client,
    pub lambda: aws_sdk_lambda::Client,
    pub rds: aws_sdk_rds::Client,
    pub apigateway: aws_sdk_apigateway::Client,
    pub sts: aws_sdk_sts::Client,
    pub secretsmanager: aws_sdk_secretsmanager::Client,
    pub logs: aws_sdk_cloudwatchlogs::Client,
    pub cloudwatch: aws_sdk_cloudwatch::Client,
    pub region: String,
    pub log: CallLog,
    pub timing: Timing,
    /// The emulator's URL when these clients talk to one (`AWS_ENDPOINT_URL`), not to AWS.
    pub emulator: Option<String>,
}

impl Clients {
    /// Clients for `region` from the standard credential chain. With `AWS_ENDPOINT_URL` set
    /// (an emulator), waits poll at the emulator's pace.
    pub async fn new(region: &str) -> Clients {
        let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new(region.to_owned()))
            .load()
            .await;
        let timing = if std::env::var_os("AWS_ENDPOINT_URL").is_some() { Timing::EMULATOR } else { Timing::AWS };
        Self::from_config(&config, region, timing)
    }

    /// Clients for an emulator at `endpoint` with throwaway credentials (tests).
    pub async fn for_emulator(region: &str, endpoint: &str) -> Clients {
        let credentials = aws_sdk_sts::config::Credentials::new("testing", "testing", None, None, "emulator");
        let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new(region.to_owned()))
            .endpoint_url(endpoint)
            .credentials_provider(credentials)
            .load()
            .await;
        Self::from_config(&config, region, Timing::EMULATOR)
    }

    fn from_config(config: &aws_config::SdkConfig, region: &str, timing: Timing) -> Clients {
        let config = config.clone();
        let emulator = (timing == Timing::EMULATOR).then(|| config.endpoint_url().map(str::to_owned)).flatten();
        let log = CallLog::default();
        Clients {
            iam: aws_sdk_iam::Client::from_conf(
                aws_sdk_iam::config::Builder::from(&config).interceptor(log.clone()).build(),
            ),
            lambda: aws_sdk_lambda::Client::from_conf(
                aws_sdk_lambda::config::Builder::from(&config).interceptor(log.clone()).build(),
            ),
            rds: aws_sdk_rds::Client::from_conf(
                aws_sdk_rds::config::Builder::from(&config).interceptor(log.clone()).build(),
            ),
            apigateway: aws_sdk_apigateway::Client::from_conf(
                aws_sdk_apigateway::config::Builder::from(&config).interceptor(log.clone()).build(),
            ),
            sts: aws_sdk_sts::Client::from_conf(
                aws_sdk_sts::config::Builder::from(&config).interceptor(log.clone()).build(),
            ),
            secretsmanager: aws_sdk_secretsmanager::Client::from_conf(
                aws_sdk_secretsmanager::config::Builder::from(&config).interceptor(log.clone()).build(),
            ),
            logs: aws_sdk_cloudwatchlogs::Client::from_conf(
                aws_sdk_cloudwatchlogs::config::Builder::from(&config).interceptor(log.clone()).build(),
            ),
            cloudwatch: aws_sdk_cloudwatch::Client::from_conf(
                aws_sdk_cloudwatch::config::Builder::from(&config).interceptor(log.clone()).build(),
            ),
            region: region.to_owned(),
            log,
            timing,
            emulator,
        }
    }
}
