//! The executions table's primitives against an independent DynamoDB (moto_server): claims,
//! leases and put-if-absent decided by DynamoDB's conditions under concurrent callers, the
//! expiry every write sets, and errors that name the call and the item.

use futures_util::future::join_all;
use pipeline_ext::executions_table::{
    now, AttributeValue, ClaimRule, Claimed, Condition, ExecutionsTable, ItemKey, TableError,
    Update, KEEP,
};
use pipeline_local::endpoints::LocalAws;
use pipeline_testkit::MotoServer;
use std::time::Duration;

const TABLE: &str = "executions";

/// The DynamoDB a test runs against: moto's server (answering one request at a time, so
/// conditional writes are serialised per item as on DynamoDB; see
/// `MotoServer::start_serialised`), or pipeline-local's, which the local pipeline runs on.
enum Backend {
    Moto(MotoServer),
    Local(Box<LocalAws>),
}

impl Backend {
    fn moto() -> Self {
        let moto = MotoServer::start_serialised();
        moto.create_executions_table(TABLE);
        Self::Moto(moto)
    }

    async fn local() -> Self {
        let aws = LocalAws::start(None).await.expect("local endpoints");
        aws.dynamodb.create_table(TABLE, &["pk"]);
        Self::Local(Box::new(aws))
    }

    /// Both, for the tests whose point is what DynamoDB decides.
    async fn both() -> [Self; 2] {
        [Self::moto(), Self::local().await]
    }

    fn table(&self, name: &str) -> ExecutionsTable {
        let (endpoint, key, secret) = match self {
            Self::Moto(moto) => (
                moto.url.clone(),
                "testing".to_string(),
                "testing".to_string(),
            ),
            Self::Local(aws) => {
                let env: std::collections::HashMap<String, String> =
                    aws.function_env().into_iter().collect();
                (
                    env["AWS_ENDPOINT_URL_DYNAMODB"].clone(),
                    env["AWS_ACCESS_KEY_ID"].clone(),
                    env["AWS_SECRET_ACCESS_KEY"].clone(),
                )
            }
        };
        let credentials = aws_credential_types::Credentials::new(key, secret, None, None, "test");
        let sdk = aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .endpoint_url(endpoint)
            .credentials_provider(
                aws_credential_types::provider::SharedCredentialsProvider::new(credentials),
            )
            .http_client(pipeline_ext::https::sdk_http_client())
            .build();
        ExecutionsTable::new(&sdk, name)
    }

    fn name(&self) -> &'static str {
        match self {
            Self::Moto(_) => "moto",
            Self::Local(_) => "pipeline-local",
        }
    }
}

fn started() -> (Backend, ExecutionsTable) {
    let backend = Backend::moto();
    let table = backend.table(TABLE);
    (backend, table)
}

const POSTING: ClaimRule<'static> = ClaimRule {
    attribute: "status",
    marker: "posting",
    since: "claimed_at",
    lease: Duration::from_secs(45),
};

#[tokio::test]
async fn one_of_many_concurrent_claimants_wins() {
    for backend in Backend::both().await {
        one_claimant_wins_on(&backend).await;
    }
}

async fn one_claimant_wins_on(backend: &Backend) {
    let table = backend.table(TABLE);
    let key = ItemKey::approval_request("token-1");
    let claims = (0..12).map(|_| table.claim(&key, &POSTING, Update::new()));
    let outcomes = join_all(claims).await;
    let won = outcomes
        .iter()
        .filter(|o| matches!(o, Ok(Claimed::Won(_))))
        .count();
    assert_eq!(won, 1, "{}: {outcomes:?}", backend.name());
    for outcome in &outcomes {
        if let Ok(Claimed::Held(Some(item))) = outcome {
            assert_eq!(item.text("status"), Some("posting"));
        } else {
            assert!(matches!(outcome, Ok(Claimed::Won(_))), "{outcome:?}");
        }
    }
}

#[tokio::test]
async fn an_abandoned_claim_is_taken_over_after_its_lease_and_a_finished_one_never() {
    let (_moto, table) = started();
    let abandoned = ItemKey::approval_request("abandoned");
    let old = AttributeValue::N((now() - 100).to_string());
    table
        .put(
            &abandoned,
            [
                ("status", AttributeValue::S("posting".into())),
                ("claimed_at", old.clone()),
            ],
        )
        .await
        .unwrap();
    assert!(matches!(
        table
            .claim(&abandoned, &POSTING, Update::new())
            .await
            .unwrap(),
        Claimed::Won(_)
    ));

    let finished = ItemKey::approval_request("finished");
    table
        .put(
            &finished,
            [
                ("status", AttributeValue::S("posted".into())),
                ("claimed_at", old),
            ],
        )
        .await
        .unwrap();
    match table
        .claim(&finished, &POSTING, Update::new())
        .await
        .unwrap()
    {
        Claimed::Held(Some(item)) => assert_eq!(item.text("status"), Some("posted")),
        other => panic!("a finished claim was taken: {other:?}"),
    }
}

#[tokio::test]
async fn a_released_claim_can_be_taken_at_once_and_a_finished_one_is_not_released() {
    let (_moto, table) = started();
    let key = ItemKey::votes("t");
    let rule = ClaimRule {
        attribute: "decision",
        marker: "deciding",
        since: "decision_at",
        lease: Duration::from_secs(30),
    };
    assert!(matches!(
        table.claim(&key, &rule, Update::new()).await.unwrap(),
        Claimed::Won(_)
    ));
    assert!(matches!(
        table.claim(&key, &rule, Update::new()).await.unwrap(),
        Claimed::Held(_)
    ));
    assert!(table.release_claim(&key, &rule).await);
    assert!(matches!(
        table.claim(&key, &rule, Update::new()).await.unwrap(),
        Claimed::Won(_)
    ));

    table
        .update(&key, Update::new().set_text("decision", "Approved"))
        .await
        .unwrap();
    assert!(!table.release_claim(&key, &rule).await);
    let item = table.get(&key).await.unwrap().unwrap();
    assert_eq!(item.text("decision"), Some("Approved"));
}

#[tokio::test]
async fn one_lease_holder_at_a_time_and_only_the_holder_writes_under_it() {
    for backend in Backend::both().await {
        one_lease_holder_on(&backend).await;
    }
}

async fn one_lease_holder_on(backend: &Backend) {
    let table = backend.table(TABLE);
    let key = ItemKey::execution("e-1");
    assert!(
        table
            .lease(&key, "nobody", Duration::from_secs(60))
            .await
            .unwrap()
            .is_none(),
        "a lease on an item that does not exist"
    );
    table
        .create(&key, Update::new().set_number("version", 1))
        .await
        .unwrap()
        .expect("created");
    let owners: Vec<String> = (0..8).map(|i| format!("owner-{i}")).collect();
    let leases = owners
        .iter()
        .map(|o| table.lease(&key, o, Duration::from_secs(60)));
    let outcomes = join_all(leases).await;
    let holders: Vec<&String> = owners
        .iter()
        .zip(&outcomes)
        .filter(|(_, o)| matches!(o, Ok(Some(_))))
        .map(|(owner, _)| owner)
        .collect();
    assert_eq!(holders.len(), 1, "{}: {outcomes:?}", backend.name());
    let holder = holders[0];
    let other = owners.iter().find(|o| *o != holder).unwrap();

    let set = |v: &str| Update::new().add_to_set("replied", vec![v.into()]);
    assert!(table
        .update_under_lease(&key, other, set("x"))
        .await
        .unwrap()
        .is_none());
    assert!(table
        .update_under_lease(&key, holder, set("a"))
        .await
        .unwrap()
        .is_some());
    assert!(table
        .release_lease(&key, other, Update::new())
        .await
        .unwrap()
        .is_none());
    let released = table
        .release_lease(&key, holder, Update::new().set_number("rendered", 1))
        .await
        .unwrap()
        .expect("released by its holder");
    assert_eq!(released.string_set("replied"), vec!["a".to_string()]);
    assert_eq!(released.number("rendered"), Some(1));
    assert!(!released.has("lease_owner") && !released.has("lease_until"));
    assert!(table
        .lease(&key, other, Duration::from_secs(60))
        .await
        .unwrap()
        .is_some());
}

#[tokio::test]
async fn an_expired_lease_is_taken_over() {
    let (_moto, table) = started();
    let key = ItemKey::execution("e-2");
    table
        .create(
            &key,
            Update::new()
                .set_text("lease_owner", "dead")
                .set_number("lease_until", now() - 1),
        )
        .await
        .unwrap()
        .unwrap();
    let item = table
        .lease(&key, "alive", Duration::from_secs(60))
        .await
        .unwrap()
        .expect("the expired lease is taken over");
    assert_eq!(item.text("lease_owner"), Some("alive"));
}

#[tokio::test]
async fn create_is_put_if_absent_under_concurrency() {
    for backend in Backend::both().await {
        let table = backend.table(TABLE);
        create_once_on(&table, backend.name()).await;
    }
}

async fn create_once_on(table: &ExecutionsTable, backend: &str) {
    let key = ItemKey::execution("e-3");
    let creates = (0..8).map(|i| table.create(&key, Update::new().set_number("version", i)));
    let outcomes = join_all(creates).await;
    let created = outcomes.iter().filter(|o| matches!(o, Ok(Some(_)))).count();
    assert_eq!(created, 1, "{backend}: {outcomes:?}");
    assert!(outcomes.iter().all(|o| o.is_ok()));
}

#[tokio::test]
async fn every_write_sets_the_expiry_and_conditions_compare_numbers() {
    let (_moto, table) = started();
    let key = ItemKey::execution("e-4");
    table
        .update(&key, Update::new().set_number("version", 9))
        .await
        .unwrap();
    let item = table.get(&key).await.unwrap().unwrap();
    let expires = item.number("expires_at").unwrap();
    assert!(expires >= now() + KEEP.as_secs() - 60 && expires <= now() + KEEP.as_secs());
    // 10 > 9 as numbers, although "10" < "9" as text.
    let stale = Update::new()
        .set_number("version", 11)
        .when(Condition::number_below("version", 10).and(Condition::number_is("version", 10)));
    assert!(table.update(&key, stale).await.unwrap().is_none());
    let fresh = Update::new()
        .set_number("version", 10)
        .when(Condition::number_below("version", 10));
    assert_eq!(
        table
            .update(&key, fresh)
            .await
            .unwrap()
            .unwrap()
            .number("version"),
        Some(10)
    );
}

#[tokio::test]
async fn reserved_attribute_names_and_list_appends_need_no_care_from_callers() {
    let (_moto, table) = started();
    let key = ItemKey::votes("v");
    for user in ["U1", "U2", "U3"] {
        let click = AttributeValue::S(user.into());
        let update = Update::new()
            .append("clicks", vec![click])
            .set_text("status", "open")
            .set_text("source", "s")
            .when(Condition::size_below("clicks", 2));
        let written = table.update(&key, update).await.unwrap();
        assert_eq!(written.is_some(), user != "U3", "{user}");
    }
    let item = table.get(&key).await.unwrap().unwrap();
    assert_eq!(item.string_list("clicks"), vec!["U1", "U2"]);
}

#[tokio::test]
async fn unreadable_json_and_a_missing_table_are_errors_that_name_the_item() {
    let (backend, table) = started();
    let key = ItemKey::execution("e-5");
    table
        .put(&key, [("record", AttributeValue::S("{not json".into()))])
        .await
        .unwrap();
    let item = table.get(&key).await.unwrap().unwrap();
    let err = item.json::<serde_json::Value>("record").unwrap_err();
    assert!(matches!(err, TableError::Unreadable { .. }));
    assert!(err.to_string().contains("execution#e-5"), "{err}");

    let missing = backend.table("no-such-table");
    let err = missing.get(&key).await.unwrap_err();
    let text = err.to_string();
    assert!(text.contains("DynamoDB GetItem on execution#e-5"), "{text}");
    assert!(text.contains("ResourceNotFoundException"), "{text}");
    assert!(!err.is_transient());
}
