//! The Slack functions' world: local AWS holding the Slack secret, a recorded Slack, the
//! executions table, and the environment approval-notifier, approval-responder and
//! pipeline-notifier read.

use crate::MotoServer;
use pipeline_local::endpoints::LocalAws;
use pipeline_local::runtime_api::{FunctionHost, FunctionSpec};
use pipeline_local::slack::LocalSlack;
use serde_json::json;
use std::path::Path;
use std::time::Duration;

/// Local AWS, a recorded Slack and the Slack functions' environment.
pub struct SlackFunctions {
    /// The local endpoints (Secrets Manager holds the Slack secret at [`Self::SECRET_ARN`]).
    pub aws: LocalAws,
    /// The recorded Slack the functions post to.
    pub slack: LocalSlack,
    /// DynamoDB and SNS, when started with [`Self::start_with_moto`].
    pub moto: Option<MotoServer>,
    env: Vec<(String, String)>,
    fallback_queue: Option<String>,
}

impl SlackFunctions {
    /// The bot token of the Slack secret (the recorded Slack accepts only it).
    pub const BOT_TOKEN: &'static str = "xoxb-local-bot-token";
    /// The signing secret of the Slack secret.
    pub const SIGNING_SECRET: &'static str = "local-signing-secret-4f9a1c";
    /// `SLACK_SECRET_ARN`.
    pub const SECRET_ARN: &'static str =
        "arn:aws:secretsmanager:us-east-1:111111111111:secret:slack";
    /// `EXECUTIONS_TABLE` (partition key `pk`).
    pub const TABLE: &'static str = "pipeline-executions";

    /// Everything on pipeline-local: the table in its DynamoDB, messages to `channel`.
    pub async fn start(channel: &str) -> Self {
        Self::start_over(crate::bench_table::Wire::Http, channel).await
    }

    /// As [`Self::start`], with the endpoints and Slack served over `wire` (HTTPS with a CA
    /// made for this world, trusted by the functions through `SSL_CERT_FILE`/`AWS_CA_BUNDLE`).
    pub async fn start_over(wire: crate::bench_table::Wire, channel: &str) -> Self {
        let functions = Self::start_local(wire, channel).await;
        functions.aws.dynamodb.create_table(Self::TABLE, &["pk"]);
        functions
    }

    /// DynamoDB and SNS on moto_server (the independent implementation), the rest on
    /// pipeline-local.
    pub async fn start_with_moto(channel: &str) -> Self {
        let moto = MotoServer::start();
        moto.create_executions_table(Self::TABLE);
        let mut functions = Self::start_local(crate::bench_table::Wire::Http, channel).await;
        functions
            .set_env("AWS_ENDPOINT_URL_DYNAMODB", &moto.url)
            .set_env("AWS_ENDPOINT_URL_SNS", &moto.url);
        functions.moto = Some(moto);
        functions
    }

    async fn start_local(wire: crate::bench_table::Wire, channel: &str) -> Self {
        let tls = (wire == crate::bench_table::Wire::Https).then(|| {
            std::sync::Arc::new(
                pipeline_local::tls::LocalTls::generate().expect("an HTTPS certificate"),
            )
        });
        let aws = LocalAws::start_with(None, tls.clone())
            .await
            .expect("the local endpoints start");
        aws.secrets.put(
            Self::SECRET_ARN,
            json!({"bot_token": Self::BOT_TOKEN, "signing_secret": Self::SIGNING_SECRET}),
        );
        let slack = LocalSlack::new(Self::BOT_TOKEN, aws.calls.clone(), aws.faults.clone());
        let slack_url = slack
            .start_with(tls.as_deref())
            .await
            .expect("the local Slack starts");
        let mut env = aws.function_env();
        env.extend([
            ("SLACK_SECRET_ARN".to_string(), Self::SECRET_ARN.to_string()),
            ("SLACK_API_URL".into(), slack_url),
            ("SLACK_CHANNEL".into(), channel.into()),
            ("EXECUTIONS_TABLE".into(), Self::TABLE.into()),
        ]);
        Self {
            aws,
            slack,
            moto: None,
            env,
            fallback_queue: None,
        }
    }

    /// Sends the functions' fallback copies (`FALLBACK_TOPIC_ARN`) to a new SNS topic on
    /// moto_server, subscribed by an SQS queue that [`Self::fallback_copy`] reads.
    pub fn route_fallback_to_queue(&mut self, name: &str) {
        let moto = self.moto();
        let topic = moto.cli(&["sns", "create-topic", "--name", name])["TopicArn"]
            .as_str()
            .expect("a topic ARN")
            .to_string();
        let queue = moto.cli(&["sqs", "create-queue", "--queue-name", name])["QueueUrl"]
            .as_str()
            .expect("a queue URL")
            .to_string();
        moto.cli(&[
            "sns",
            "subscribe",
            "--topic-arn",
            &topic,
            "--protocol",
            "sqs",
            "--notification-endpoint",
            &format!("arn:aws:sqs:us-east-1:123456789012:{name}"),
        ]);
        self.set_env("FALLBACK_TOPIC_ARN", &topic);
        self.fallback_queue = Some(queue);
    }

    /// The first copy that reached the fallback topic; panics when there is none.
    pub fn fallback_copy(&self) -> String {
        let queue = self
            .fallback_queue
            .as_deref()
            .expect("SlackFunctions::route_fallback_to_queue was called");
        let received = self
            .moto()
            .cli(&["sqs", "receive-message", "--queue-url", queue]);
        received["Messages"][0]["Body"]
            .as_str()
            .expect("a copy on the fallback topic")
            .to_string()
    }

    /// The moto_server this world uses; panics when it was started without one.
    pub fn moto(&self) -> &MotoServer {
        self.moto
            .as_ref()
            .expect("started with SlackFunctions::start_with_moto")
    }

    /// The Function URL request Slack sends when `U0APPROVER` presses Approve on the message
    /// `message_ts` in `channel` that carries `approval`'s buttons, signed now with
    /// [`Self::SIGNING_SECRET`].
    pub fn signed_approve_click(
        approval: &pipeline_ext::slack::approval::ApprovalRef,
        channel: &str,
        message_ts: &str,
    ) -> serde_json::Value {
        use pipeline_ext::slack::approval::buttons;
        let payload = serde_json::json!({"type": "block_actions", "user": {"id": "U0APPROVER", "username": "dana"},
            "channel": {"id": channel}, "message": {"ts": message_ts, "blocks": [buttons(approval)]},
            "trigger_id": "t", "actions": [{"action_id": "approve", "value": approval.encode()}]});
        let body = form_urlencoded::Serializer::new(String::new())
            .append_pair("payload", &payload.to_string())
            .finish();
        let ts = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default()
            .to_string();
        let signature =
            pipeline_ext::slack::signature::sign(Self::SIGNING_SECRET, &ts, body.as_bytes());
        serde_json::json!({"headers": {"x-slack-request-timestamp": ts, "x-slack-signature": signature},
            "body": body, "isBase64Encoded": false})
    }

    /// Sets (or replaces) a variable of every function started from now on.
    pub fn set_env(&mut self, key: &str, value: &str) -> &mut Self {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.to_string(), value.to_string()));
        self
    }

    /// Starts `program` (with `args`, e.g. a script for an interpreter) as function `name`,
    /// with a 60-second timeout.
    pub async fn host(
        &self,
        name: &str,
        program: impl AsRef<Path>,
        args: &[String],
    ) -> FunctionHost {
        let mut spec = FunctionSpec::new(name, program.as_ref());
        spec.args = args.to_vec();
        spec.env = self.env.clone();
        spec.timeout = Duration::from_secs(60);
        start(spec).await
    }

    /// As [`host`](Self::host), with `env` on top of the world's and its own timeout.
    pub async fn host_with(
        &self,
        name: &str,
        program: impl AsRef<Path>,
        env: &[(&str, &str)],
        timeout: Duration,
    ) -> FunctionHost {
        let mut spec = FunctionSpec::new(name, program.as_ref());
        spec.env = self.env.clone();
        spec.env
            .extend(env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        spec.timeout = timeout;
        start(spec).await
    }
}

async fn start(spec: FunctionSpec) -> FunctionHost {
    let name = spec.name.clone();
    FunctionHost::start(spec)
        .await
        .unwrap_or_else(|e| panic!("{name} starts: {e}"))
}
