//! All local AWS endpoints of one pipeline-local process, started together on loopback.

use crate::calls::CallLog;
use crate::cloudfront::LocalCloudFront;
use crate::cloudwatch::LocalCloudWatch;
use crate::codepipeline::LocalCodePipeline;
use crate::dynamodb::LocalDynamoDb;
use crate::faults::Faults;
use crate::rds::LocalRds;
use crate::s3::{CredentialRegistry, LocalS3};
use crate::secretsmanager::LocalSecrets;
use crate::ssm::LocalParameterStore;
use crate::sts::LocalSts;
use crate::tls::LocalTls;
use axum::Router;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The credentials the local "function role" signs with.
pub const ROLE_ACCESS_KEY: &str = "AKIALOCALFUNCTIONROLE";
const ROLE_SECRET_KEY: &str = "local-function-role-secret";
/// The region every local endpoint is in.
pub const REGION: &str = "us-east-1";

/// Temporary credentials issued for one job, as CodePipeline's `artifactCredentials`.
#[derive(Clone, Debug)]
pub struct IssuedCredentials {
    /// The access key id.
    pub access_key_id: String,
    /// The secret key.
    pub secret_access_key: String,
    /// The session token.
    pub session_token: String,
}

/// Every local AWS endpoint of one process, started together on loopback.
pub struct LocalAws {
    /// Every call answered.
    pub calls: CallLog,
    /// Planned failures.
    pub faults: Faults,
    /// CodePipeline.
    pub codepipeline: LocalCodePipeline,
    /// S3.
    pub s3: LocalS3,
    /// Secrets Manager.
    pub secrets: LocalSecrets,
    /// CloudWatch.
    pub cloudwatch: LocalCloudWatch,
    /// DynamoDB.
    pub dynamodb: LocalDynamoDb,
    /// RDS.
    pub rds: LocalRds,
    /// CloudFront (invalidations).
    pub cloudfront: LocalCloudFront,
    /// STS (`AssumeRole` into the roles declared, `GetCallerIdentity`).
    pub sts: LocalSts,
    /// SSM Parameter Store.
    pub ssm: LocalParameterStore,
    credentials: CredentialRegistry,
    s3_addr: SocketAddr,
    codepipeline_addr: SocketAddr,
    secrets_addr: SocketAddr,
    cloudwatch_addr: SocketAddr,
    dynamodb_addr: SocketAddr,
    rds_addr: SocketAddr,
    cloudfront_addr: SocketAddr,
    sts_addr: SocketAddr,
    ssm_addr: SocketAddr,
    tls: Option<Arc<LocalTls>>,
    _temp: Option<tempfile::TempDir>,
    servers: Vec<tokio::task::JoinHandle<()>>,
}

impl LocalAws {
    /// Starts every endpoint on a free loopback port. Objects live under `state_dir`, or in a
    /// temporary folder removed when this value is dropped.
    pub async fn start(state_dir: Option<&Path>) -> std::io::Result<Self> {
        Self::start_with(state_dir, None).await
    }

    /// As [`LocalAws::start`], over HTTPS with `tls`'s certificate when given (`--tls`).
    pub async fn start_with(
        state_dir: Option<&Path>,
        tls: Option<Arc<LocalTls>>,
    ) -> std::io::Result<Self> {
        let (temp, base): (Option<tempfile::TempDir>, PathBuf) = match state_dir {
            Some(dir) => (None, dir.to_path_buf()),
            None => {
                let temp = tempfile::Builder::new()
                    .prefix("pipeline-local-")
                    .tempdir()?;
                let base = temp.path().to_path_buf();
                (Some(temp), base)
            }
        };
        let root = base.join("s3");
        let calls = CallLog::default();
        let faults = Faults::default();
        let credentials = CredentialRegistry::default();
        credentials.register(ROLE_ACCESS_KEY, ROLE_SECRET_KEY);
        let sts = LocalSts::new(credentials.clone(), calls.clone(), faults.clone());
        let s3 = LocalS3::new(&root, credentials.clone(), calls.clone(), faults.clone())
            .map_err(std::io::Error::other)?
            .with_accounts(sts.clone());
        // A state folder keeps the executions, so a later run knows the last successful one.
        let codepipeline = match state_dir {
            Some(dir) => LocalCodePipeline::with_history_file(
                calls.clone(),
                faults.clone(),
                &dir.join(crate::codepipeline::HISTORY_FILE),
            )?,
            None => LocalCodePipeline::new(calls.clone(), faults.clone()),
        };
        let secrets = LocalSecrets::new(calls.clone(), faults.clone()).with_accounts(sts.clone());
        let cloudwatch =
            LocalCloudWatch::new(calls.clone(), faults.clone()).with_accounts(sts.clone());
        let dynamodb = LocalDynamoDb::new(calls.clone(), faults.clone());
        let rds = LocalRds::new(&base.join("rds-snapshots"), calls.clone(), faults.clone())
            .with_accounts(sts.clone());
        let cloudfront = LocalCloudFront::new(calls.clone(), faults.clone());
        let ssm = LocalParameterStore::new(calls.clone(), faults.clone());
        let mut servers = Vec::new();
        let mut serve = async |router: Router| -> std::io::Result<SocketAddr> {
            let (addr, task) = crate::tls::serve(router, tls.as_deref()).await?;
            servers.push(task);
            Ok(addr)
        };
        let s3_addr = serve(s3.router()).await?;
        let codepipeline_addr = serve(codepipeline.router()).await?;
        let secrets_addr = serve(secrets.router()).await?;
        let cloudwatch_addr = serve(cloudwatch.router()).await?;
        let dynamodb_addr = serve(dynamodb.router()).await?;
        let rds_addr = serve(rds.router()).await?;
        let cloudfront_addr = serve(cloudfront.router()).await?;
        let sts_addr = serve(sts.router()).await?;
        let ssm_addr = serve(ssm.router()).await?;
        Ok(Self {
            calls,
            faults,
            codepipeline,
            s3,
            secrets,
            cloudwatch,
            dynamodb,
            rds,
            cloudfront,
            sts,
            ssm,
            credentials,
            s3_addr,
            codepipeline_addr,
            secrets_addr,
            cloudwatch_addr,
            dynamodb_addr,
            rds_addr,
            cloudfront_addr,
            sts_addr,
            ssm_addr,
            tls,
            _temp: temp,
            servers,
        })
    }

    fn url(&self, addr: SocketAddr) -> String {
        format!("{}://{addr}", crate::tls::scheme(self.tls.as_deref()))
    }

    /// The HTTPS certificate of the endpoints, when they serve HTTPS.
    pub fn tls(&self) -> Option<&Arc<LocalTls>> {
        self.tls.as_ref()
    }

    /// S3's URL.
    pub fn s3_url(&self) -> String {
        self.url(self.s3_addr)
    }
    /// CodePipeline's URL.
    pub fn codepipeline_url(&self) -> String {
        self.url(self.codepipeline_addr)
    }
    /// Secrets Manager's URL.
    pub fn secrets_url(&self) -> String {
        self.url(self.secrets_addr)
    }
    /// CloudWatch's URL.
    pub fn cloudwatch_url(&self) -> String {
        self.url(self.cloudwatch_addr)
    }
    /// DynamoDB's URL.
    pub fn dynamodb_url(&self) -> String {
        self.url(self.dynamodb_addr)
    }
    /// RDS's URL.
    pub fn rds_url(&self) -> String {
        self.url(self.rds_addr)
    }

    /// CloudFront's URL.
    pub fn cloudfront_url(&self) -> String {
        self.url(self.cloudfront_addr)
    }

    /// STS's URL.
    pub fn sts_url(&self) -> String {
        self.url(self.sts_addr)
    }

    /// SSM Parameter Store's URL.
    pub fn ssm_url(&self) -> String {
        self.url(self.ssm_addr)
    }

    /// Accepts another access key at the S3 endpoint (for a test's own client or the AWS CLI).
    pub fn register_credentials(&self, access_key: &str, secret_key: &str) {
        self.credentials.register(access_key, secret_key);
    }

    /// Issues fresh job credentials, accepted by the S3 endpoint from now on.
    pub fn issue_credentials(&self) -> IssuedCredentials {
        let id = uuid::Uuid::new_v4().simple().to_string().to_uppercase();
        let issued = IssuedCredentials {
            access_key_id: format!("ASIA{}", &id[..16]),
            secret_access_key: uuid::Uuid::new_v4().simple().to_string(),
            session_token: format!("local-session-{}", uuid::Uuid::new_v4().simple()),
        };
        self.credentials
            .register(&issued.access_key_id, &issued.secret_access_key);
        issued
    }

    /// The environment a function needs to reach these endpoints with the role's credentials.
    pub fn function_env(&self) -> Vec<(String, String)> {
        let mut env = vec![
            ("AWS_REGION".into(), REGION.into()),
            ("AWS_DEFAULT_REGION".into(), REGION.into()),
            ("AWS_ACCESS_KEY_ID".into(), ROLE_ACCESS_KEY.into()),
            ("AWS_SECRET_ACCESS_KEY".into(), ROLE_SECRET_KEY.into()),
            ("AWS_SESSION_TOKEN".into(), "local-role-session".into()),
            ("AWS_ENDPOINT_URL_S3".into(), self.s3_url()),
            (
                "AWS_ENDPOINT_URL_CODEPIPELINE".into(),
                self.codepipeline_url(),
            ),
            (
                "AWS_ENDPOINT_URL_SECRETS_MANAGER".into(),
                self.secrets_url(),
            ),
            ("AWS_ENDPOINT_URL_CLOUDWATCH".into(), self.cloudwatch_url()),
            ("AWS_ENDPOINT_URL_DYNAMODB".into(), self.dynamodb_url()),
            ("AWS_ENDPOINT_URL_RDS".into(), self.rds_url()),
            ("AWS_ENDPOINT_URL_CLOUDFRONT".into(), self.cloudfront_url()),
            ("AWS_ENDPOINT_URL_STS".into(), self.sts_url()),
            ("AWS_ENDPOINT_URL_SSM".into(), self.ssm_url()),
        ];
        if let Some(tls) = &self.tls {
            env.extend(tls.trust_env());
        }
        env
    }
}

impl Drop for LocalAws {
    fn drop(&mut self) {
        for server in &self.servers {
            server.abort();
        }
    }
}
