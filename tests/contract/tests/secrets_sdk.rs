//! `SecretCache` with the real Secrets Manager SDK client against the local endpoint.

use pipeline_ext::secrets::SecretCache;
use pipeline_local::endpoints::LocalAws;
use serde_json::json;
use std::time::Duration;

async fn cache(aws: &LocalAws, ttl: Duration) -> SecretCache {
    let config = aws_sdk_secretsmanager::config::Builder::new()
        .behavior_version(aws_sdk_secretsmanager::config::BehaviorVersion::latest())
        .region(aws_sdk_secretsmanager::config::Region::new("us-east-1"))
        .endpoint_url(aws.secrets_url())
        .credentials_provider(aws_credential_types::Credentials::new(
            "AKIATEST", "secret", None, None, "test",
        ))
        .http_client(pipeline_ext::https::sdk_http_client())
        .build();
    SecretCache::with_ttl(aws_sdk_secretsmanager::Client::from_conf(config), ttl)
}

#[derive(Debug, serde::Deserialize)]
struct Slack {
    bot_token: String,
}

#[tokio::test]
async fn caches_secrets_across_calls_until_the_ttl() {
    let aws = LocalAws::start(None).await.unwrap();
    aws.secrets.put("slack", json!({"bot_token": "xoxb-1"}));
    let cache = cache(&aws, Duration::from_millis(300)).await;
    assert_eq!(
        cache.get_json::<Slack>("slack").await.unwrap().bot_token,
        "xoxb-1"
    );
    assert_eq!(
        cache.get_json::<Slack>("slack").await.unwrap().bot_token,
        "xoxb-1"
    );
    assert_eq!(aws.calls.count("secretsmanager", "GetSecretValue"), 1);
    aws.secrets
        .put("slack", json!({"bot_token": "xoxb-rotated"}));
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert_eq!(
        cache.get_json::<Slack>("slack").await.unwrap().bot_token,
        "xoxb-rotated"
    );
    assert_eq!(aws.calls.count("secretsmanager", "GetSecretValue"), 2);
}

#[tokio::test]
async fn missing_secret_and_wrong_shape_are_clear_and_never_quote_the_value() {
    let aws = LocalAws::start(None).await.unwrap();
    aws.secrets.put("wrong", json!({"bot_token": 12345678}));
    let cache = cache(&aws, Duration::from_secs(60)).await;
    let missing = cache
        .get_json::<Slack>("absent")
        .await
        .unwrap_err()
        .to_string();
    assert!(missing.contains("ResourceNotFoundException"), "{missing}");
    let shape = cache
        .get_json::<Slack>("wrong")
        .await
        .unwrap_err()
        .to_string();
    assert!(
        shape.contains("wrong type") && !shape.contains("12345678"),
        "{shape}"
    );
}
