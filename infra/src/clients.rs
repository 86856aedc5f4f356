//! One client per AWS service the deployment uses, all from one SdkConfig
//! and all recording into one operation log.

use aws_config::SdkConfig;

use crate::oplog::OperationLog;

#[derive(Debug, Clone)]
pub struct Clients {
    pub s3: aws_sdk_s3::Client,
    pub sts: aws_sdk_sts::Client,
    pub iam: aws_sdk_iam::Client,
    pub ec2: aws_sdk_ec2::Client,
    pub kafka: aws_sdk_kafka::Client,
    pub connect: aws_sdk_kafkaconnect::Client,
    pub apigateway: aws_sdk_apigateway::Client,
    pub kinesis: aws_sdk_kinesis::Client,
    pub mwaa: aws_sdk_mwaa::Client,
    pub secretsmanager: aws_sdk_secretsmanager::Client,
    pub tagging: aws_sdk_resourcegroupstagging::Client,
    pub log: OperationLog,
    pub region: String,
    /// The custom endpoint (moto, LocalStack) every client talks to, if any.
    pub endpoint_url: Option<String>,
}

impl Clients {
    pub fn new(config: &SdkConfig) -> Self {
        let log = OperationLog::default();
        macro_rules! client {
            ($krate:ident) => {
                $krate::Client::from_conf($krate::config::Builder::from(config).interceptor(log.clone()).build())
            };
        }
        let s3 = aws_sdk_s3::Client::from_conf(aws_setup::s3::config_builder(config).interceptor(log.clone()).build());
        Self {
            s3,
            sts: client!(aws_sdk_sts),
            iam: client!(aws_sdk_iam),
            ec2: client!(aws_sdk_ec2),
            kafka: client!(aws_sdk_kafka),
            connect: client!(aws_sdk_kafkaconnect),
            apigateway: client!(aws_sdk_apigateway),
            kinesis: client!(aws_sdk_kinesis),
            mwaa: {
                let builder = aws_sdk_mwaa::config::Builder::from(config).interceptor(log.clone());
                // MWAA's operations put `api.` or `env.` before the host; an
                // emulator is one host, so against a custom endpoint the
                // prefix would only make a name that does not resolve.
                let builder = if config.endpoint_url().is_some() { builder.interceptor(NoHostPrefix) } else { builder };
                aws_sdk_mwaa::Client::from_conf(builder.build())
            },
            secretsmanager: client!(aws_sdk_secretsmanager),
            tagging: client!(aws_sdk_resourcegroupstagging),
            region: config.region().map(|r| r.to_string()).unwrap_or_else(|| "us-east-1".into()),
            endpoint_url: config.endpoint_url().map(str::to_string),
            log,
        }
    }
}

/// Drops the host prefix an operation asks for, before the endpoint is
/// applied. Hand-written: the SDK has no setting to turn host prefixes off.
#[derive(Debug)]
struct NoHostPrefix;

impl aws_smithy_runtime_api::client::interceptors::Intercept for NoHostPrefix {
    fn name(&self) -> &'static str {
        "NoHostPrefix"
    }

    fn read_before_attempt(
        &self,
        _: &aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef<'_>,
        _: &aws_smithy_runtime_api::client::runtime_components::RuntimeComponents,
        cfg: &mut aws_smithy_types::config_bag::ConfigBag,
    ) -> Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        cfg.interceptor_state().unset::<aws_smithy_runtime_api::client::endpoint::EndpointPrefix>();
        Ok(())
    }
}
