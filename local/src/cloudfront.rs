//! CloudFront invalidations on loopback, over CloudFront's REST-XML protocol
//! (`/2020-05-31/distribution/{id}/invalidation`), with CloudFront's limits and states.
//!
//! Served: `CreateInvalidation`, `GetInvalidation`, `ListInvalidations`. Every well-formed
//! distribution id exists. An invalidation is `InProgress` until it has been read
//! ([`LocalCloudFront::set_reads_to_complete`]) enough times or has aged
//! ([`LocalCloudFront::set_complete_after`]), then `Completed`, so a caller's wait is exercised.
//! While in progress its paths count against the distribution's limits: 3,000 file paths and
//! 15 wildcard paths ([`MAX_FILES_IN_PROGRESS`], [`MAX_WILDCARDS_IN_PROGRESS`]); a batch that
//! would pass them is `TooManyInvalidationsInProgress`, as CloudFront answers. A repeated
//! `CallerReference` with the same paths answers the first invalidation; with other paths,
//! `InvalidationBatchAlreadyExists`.

use crate::calls::{access_key_of, ms_since_start, Call, CallLog};
use crate::faults::Faults;
use crate::service::HANG;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

/// File paths (no `*`) CloudFront lets a distribution have in progress.
pub const MAX_FILES_IN_PROGRESS: usize = 3000;
/// Wildcard paths CloudFront lets a distribution have in progress.
pub const MAX_WILDCARDS_IN_PROGRESS: usize = 15;
/// The API version in every path.
const VERSION: &str = "2020-05-31";
const XMLNS: &str = "http://cloudfront.amazonaws.com/doc/2020-05-31/";

/// One invalidation as the local endpoint keeps it.
#[derive(Clone, Debug)]
pub struct Invalidation {
    /// `Id` (`I…`).
    pub id: String,
    /// The distribution.
    pub distribution: String,
    /// The paths, as sent.
    pub paths: Vec<String>,
    /// `CallerReference`.
    pub caller_reference: String,
    /// `GetInvalidation` reads so far.
    pub reads: u32,
    /// `CreateTime`, as answered.
    created_at: SystemTime,
    /// When it was made, for the age at which it completes by itself.
    created: Instant,
}

impl Invalidation {
    fn wildcards(&self) -> usize {
        self.paths.iter().filter(|p| p.contains('*')).count()
    }
}

/// When an invalidation turns `Completed`.
struct Settings {
    /// After this many `GetInvalidation` reads of it.
    reads_to_complete: u32,
    /// Or once this old, read or not, so invalidations nobody waits for free the limits.
    complete_after: Duration,
}

/// Shared state of the local CloudFront endpoint.
#[derive(Clone)]
pub struct LocalCloudFront {
    /// Every invalidation made, oldest first, across distributions.
    invalidations: Arc<Mutex<Vec<Invalidation>>>,
    /// When they complete.
    settings: Arc<Mutex<Settings>>,
    /// Every call answered.
    calls: CallLog,
    /// Planned failures (`cloudfront`, by operation, keyed by distribution id).
    faults: Faults,
}

/// An error in CloudFront's shape.
struct Refusal {
    /// The HTTP status.
    status: StatusCode,
    /// CloudFront's error code (`TooManyInvalidationsInProgress`).
    code: String,
    /// The message.
    message: String,
}

impl Refusal {
    fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            code: code.to_string(),
            message: message.into(),
        }
    }
}

impl LocalCloudFront {
    /// An endpoint with no invalidations; each completes after two reads or 30 seconds.
    pub fn new(calls: CallLog, faults: Faults) -> Self {
        Self {
            invalidations: Arc::default(),
            settings: Arc::new(Mutex::new(Settings {
                reads_to_complete: 2,
                complete_after: Duration::from_secs(30),
            })),
            calls,
            faults,
        }
    }

    /// An invalidation is `Completed` from its `n`-th `GetInvalidation` on (0: at once).
    pub fn set_reads_to_complete(&self, n: u32) {
        if let Ok(mut s) = self.settings.lock() {
            s.reads_to_complete = n;
        }
    }

    /// An invalidation is `Completed` once this old, read or not.
    pub fn set_complete_after(&self, age: Duration) {
        if let Ok(mut s) = self.settings.lock() {
            s.complete_after = age;
        }
    }

    /// Every invalidation created, oldest first.
    pub fn invalidations(&self) -> Vec<Invalidation> {
        self.invalidations
            .lock()
            .map(|i| i.clone())
            .unwrap_or_default()
    }

    /// Its HTTP routes.
    pub fn router(&self) -> Router {
        Router::new()
            .route(
                &format!("/{VERSION}/distribution/{{distribution}}/invalidation"),
                get(list).post(create),
            )
            .route(
                &format!("/{VERSION}/distribution/{{distribution}}/invalidation/{{id}}"),
                get(read),
            )
            .with_state(self.clone())
    }

    fn completed(&self, invalidation: &Invalidation) -> bool {
        let Ok(settings) = self.settings.lock() else {
            return true;
        };
        invalidation.reads >= settings.reads_to_complete
            || invalidation.created.elapsed() >= settings.complete_after
    }

    /// The common path: faults, the operation, the call log.
    async fn answer(
        &self,
        operation: &str,
        distribution: &str,
        headers: &HeaderMap,
        detail: Value,
        run: impl FnOnce(&Self) -> Result<(StatusCode, String), Refusal>,
    ) -> Response {
        let at_ms = ms_since_start();
        let record = |status: u16| {
            self.calls.record(Call {
                service: "cloudfront",
                operation: operation.to_string(),
                at_ms,
                status,
                access_key: access_key_of(headers),
                detail: detail.clone(),
            })
        };
        let result = match self
            .faults
            .take("cloudfront", operation, Some(distribution))
        {
            Some(fault) if fault.code == HANG => {
                record(0);
                return std::future::pending().await;
            }
            Some(fault) => Err(Refusal {
                status: StatusCode::from_u16(fault.status).unwrap_or(StatusCode::BAD_REQUEST),
                code: fault.code,
                message: fault.message,
            }),
            None if !valid_distribution_id(distribution) => Err(Refusal::new(
                StatusCode::NOT_FOUND,
                "NoSuchDistribution",
                format!("The specified distribution does not exist: {distribution}"),
            )),
            None => run(self),
        };
        match result {
            Ok((status, body)) => {
                record(status.as_u16());
                (status, [(header::CONTENT_TYPE, "text/xml")], body).into_response()
            }
            Err(refusal) => {
                record(refusal.status.as_u16());
                error_response(&refusal)
            }
        }
    }

    fn create_invalidation(
        &self,
        distribution: &str,
        body: &[u8],
    ) -> Result<(StatusCode, String), Refusal> {
        let batch = parse_batch(body)?;
        let mut all = self
            .invalidations
            .lock()
            .map_err(|_| Refusal::new(StatusCode::INTERNAL_SERVER_ERROR, "InternalError", ""))?;
        if let Some(same) = all
            .iter()
            .find(|i| i.distribution == distribution && i.caller_reference == batch.reference)
        {
            let (mut a, mut b) = (same.paths.clone(), batch.paths.clone());
            a.sort();
            b.sort();
            if a != b {
                return Err(Refusal::new(
                    StatusCode::CONFLICT,
                    "InvalidationBatchAlreadyExists",
                    format!(
                        "An invalidation with CallerReference {} and other paths already exists",
                        batch.reference
                    ),
                ));
            }
            let same = same.clone();
            drop(all);
            return Ok((StatusCode::CREATED, self.invalidation_xml(&same)));
        }
        let (mut files, mut wildcards) = (0, 0);
        for i in all.iter().filter(|i| i.distribution == distribution) {
            if !self.completed(i) {
                wildcards += i.wildcards();
                files += i.paths.len() - i.wildcards();
            }
        }
        let new_wildcards = batch.paths.iter().filter(|p| p.contains('*')).count();
        if files + batch.paths.len() - new_wildcards > MAX_FILES_IN_PROGRESS
            || wildcards + new_wildcards > MAX_WILDCARDS_IN_PROGRESS
        {
            return Err(Refusal::new(
                StatusCode::BAD_REQUEST,
                "TooManyInvalidationsInProgress",
                format!(
                    "Processing your request will cause you to exceed the maximum number of in-progress wildcard invalidations ({MAX_WILDCARDS_IN_PROGRESS}) or file invalidations ({MAX_FILES_IN_PROGRESS}); {wildcards} wildcard and {files} file paths are in progress"
                ),
            ));
        }
        let invalidation = Invalidation {
            id: format!(
                "I{}",
                &uuid::Uuid::new_v4().simple().to_string().to_uppercase()[..13]
            ),
            distribution: distribution.to_string(),
            paths: batch.paths,
            caller_reference: batch.reference,
            reads: 0,
            created_at: SystemTime::now(),
            created: Instant::now(),
        };
        all.push(invalidation.clone());
        drop(all);
        Ok((StatusCode::CREATED, self.invalidation_xml(&invalidation)))
    }

    fn get_invalidation(
        &self,
        distribution: &str,
        id: &str,
    ) -> Result<(StatusCode, String), Refusal> {
        let found = {
            let mut all = self.invalidations.lock().map_err(|_| {
                Refusal::new(StatusCode::INTERNAL_SERVER_ERROR, "InternalError", "")
            })?;
            all.iter_mut()
                .find(|i| i.distribution == distribution && i.id == id)
                .map(|i| {
                    i.reads += 1;
                    i.clone()
                })
        };
        match found {
            Some(invalidation) => Ok((StatusCode::OK, self.invalidation_xml(&invalidation))),
            None => Err(Refusal::new(
                StatusCode::NOT_FOUND,
                "NoSuchInvalidation",
                format!("The specified invalidation does not exist: {id}"),
            )),
        }
    }

    fn list_invalidations(&self, distribution: &str) -> Result<(StatusCode, String), Refusal> {
        let all = self.invalidations();
        let mine: Vec<&Invalidation> = all
            .iter()
            .rev()
            .filter(|i| i.distribution == distribution)
            .collect();
        let items: String = mine
            .iter()
            .map(|i| {
                format!(
                    "<InvalidationSummary><Id>{}</Id><CreateTime>{}</CreateTime><Status>{}</Status></InvalidationSummary>",
                    i.id,
                    timestamp(i.created_at),
                    self.status(i)
                )
            })
            .collect();
        Ok((
            StatusCode::OK,
            format!(
                r#"<?xml version="1.0" encoding="UTF-8"?><InvalidationList xmlns="{XMLNS}"><Marker></Marker><MaxItems>100</MaxItems><IsTruncated>false</IsTruncated><Quantity>{}</Quantity><Items>{items}</Items></InvalidationList>"#,
                mine.len()
            ),
        ))
    }

    fn status(&self, invalidation: &Invalidation) -> &'static str {
        if self.completed(invalidation) {
            "Completed"
        } else {
            "InProgress"
        }
    }

    fn invalidation_xml(&self, i: &Invalidation) -> String {
        let paths: String = i
            .paths
            .iter()
            .map(|p| format!("<Path>{}</Path>", escape(p)))
            .collect();
        format!(
            r#"<?xml version="1.0" encoding="UTF-8"?><Invalidation xmlns="{XMLNS}"><Id>{}</Id><Status>{}</Status><CreateTime>{}</CreateTime><InvalidationBatch><Paths><Quantity>{}</Quantity><Items>{paths}</Items></Paths><CallerReference>{}</CallerReference></InvalidationBatch></Invalidation>"#,
            i.id,
            self.status(i),
            timestamp(i.created_at),
            i.paths.len(),
            escape(&i.caller_reference)
        )
    }
}

async fn create(
    State(cf): State<LocalCloudFront>,
    Path(distribution): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let detail = match parse_batch(&body) {
        Ok(batch) => {
            json!({"distribution": distribution, "paths": batch.paths, "caller_reference": batch.reference})
        }
        Err(_) => json!({"distribution": distribution}),
    };
    cf.answer(
        "CreateInvalidation",
        &distribution,
        &headers,
        detail,
        |cf| cf.create_invalidation(&distribution, &body),
    )
    .await
}

async fn read(
    State(cf): State<LocalCloudFront>,
    Path((distribution, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let detail = json!({"distribution": distribution, "id": id});
    cf.answer("GetInvalidation", &distribution, &headers, detail, |cf| {
        cf.get_invalidation(&distribution, &id)
    })
    .await
}

async fn list(
    State(cf): State<LocalCloudFront>,
    Path(distribution): Path<String>,
    headers: HeaderMap,
) -> Response {
    let detail = json!({"distribution": distribution});
    cf.answer("ListInvalidations", &distribution, &headers, detail, |cf| {
        cf.list_invalidations(&distribution)
    })
    .await
}

/// Capital letters and digits, as CloudFront issues them.
fn valid_distribution_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
}

/// An `InvalidationBatch` as sent.
#[derive(Debug)]
struct Batch {
    /// The paths, as sent.
    paths: Vec<String>,
    /// `CallerReference`: the same one with the same paths is the same invalidation.
    reference: String,
}

/// `InvalidationBatch` as the XML has it.
#[derive(serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct BatchXml {
    paths: PathsXml,
    #[serde(default)]
    caller_reference: Option<String>,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PathsXml {
    #[serde(default)]
    quantity: Option<String>,
    #[serde(default)]
    items: Option<ItemsXml>,
}

#[derive(serde::Deserialize)]
struct ItemsXml {
    #[serde(default, rename = "Path")]
    path: Vec<String>,
}

/// Reads an `InvalidationBatch` document, checked as CloudFront checks it.
fn parse_batch(body: &[u8]) -> Result<Batch, Refusal> {
    let malformed = |why: String| Refusal::new(StatusCode::BAD_REQUEST, "MalformedInput", why);
    let text = std::str::from_utf8(body).map_err(|_| malformed("the body is not UTF-8".into()))?;
    let batch: BatchXml = quick_xml::de::from_str(text)
        .map_err(|e| malformed(format!("the body is not an InvalidationBatch: {e}")))?;
    let paths = batch.paths.items.map(|i| i.path).unwrap_or_default();
    let quantity = batch
        .paths
        .quantity
        .map(|q| {
            q.trim()
                .parse::<usize>()
                .map_err(|_| malformed(format!("Quantity `{q}` is not a number")))
        })
        .transpose()?;
    let reference = batch.caller_reference;
    let reference = reference
        .filter(|r| !r.is_empty())
        .ok_or_else(|| malformed("CallerReference is required".into()))?;
    if quantity != Some(paths.len()) {
        return Err(Refusal::new(
            StatusCode::BAD_REQUEST,
            "InconsistentQuantities",
            format!(
                "Quantity {} does not match the {} paths sent",
                quantity.map_or("(missing)".to_string(), |q| q.to_string()),
                paths.len()
            ),
        ));
    }
    if paths.is_empty() {
        return Err(Refusal::new(
            StatusCode::BAD_REQUEST,
            "InvalidArgument",
            "An invalidation needs at least one path",
        ));
    }
    if paths.len() > MAX_FILES_IN_PROGRESS {
        return Err(Refusal::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "BatchTooLarge",
            format!(
                "Invalidation batch specified is too large: {} paths, at most {MAX_FILES_IN_PROGRESS}",
                paths.len()
            ),
        ));
    }
    for path in &paths {
        let star = path.find('*');
        if !path.starts_with('/') || star.is_some_and(|at| at != path.len() - 1) {
            return Err(Refusal::new(
                StatusCode::BAD_REQUEST,
                "InvalidArgument",
                format!(
                    "Your request contains an invalid path `{path}`: a path starts with `/` and may end with one `*`"
                ),
            ));
        }
    }
    Ok(Batch { paths, reference })
}

fn error_response(refusal: &Refusal) -> Response {
    let kind = if refusal.status.is_server_error() {
        "Receiver"
    } else {
        "Sender"
    };
    let body = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><ErrorResponse xmlns="{XMLNS}"><Error><Type>{kind}</Type><Code>{}</Code><Message>{}</Message></Error><RequestId>{}</RequestId></ErrorResponse>"#,
        refusal.code,
        escape(&refusal.message),
        uuid::Uuid::new_v4()
    );
    (refusal.status, [(header::CONTENT_TYPE, "text/xml")], body).into_response()
}

fn timestamp(at: SystemTime) -> String {
    aws_smithy_types::DateTime::from(at)
        .fmt(aws_smithy_types::date_time::Format::DateTime)
        .unwrap_or_default()
}

fn escape(text: &str) -> String {
    quick_xml::escape::escape(text).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn batch(paths: &[&str], reference: &str) -> Vec<u8> {
        let items: String = paths.iter().map(|p| format!("<Path>{p}</Path>")).collect();
        format!(
            "<InvalidationBatch xmlns=\"{XMLNS}\"><Paths><Quantity>{}</Quantity><Items>{items}</Items></Paths><CallerReference>{reference}</CallerReference></InvalidationBatch>",
            paths.len()
        )
        .into_bytes()
    }

    #[test]
    fn an_invalidation_completes_after_its_reads() {
        let cf = LocalCloudFront::new(CallLog::default(), Faults::default());
        cf.set_reads_to_complete(2);
        let (_, created) = cf
            .create_invalidation("E1", &batch(&["/a.js", "/b/*"], "r1"))
            .ok()
            .unwrap();
        assert!(created.contains("<Status>InProgress</Status>"), "{created}");
        let id = cf.invalidations()[0].id.clone();
        let first = cf.get_invalidation("E1", &id).ok().unwrap().1;
        assert!(first.contains("InProgress"), "{first}");
        let second = cf.get_invalidation("E1", &id).ok().unwrap().1;
        assert!(second.contains("<Status>Completed</Status>"), "{second}");
    }

    #[test]
    fn limits_in_progress_are_cloudfronts() {
        let cf = LocalCloudFront::new(CallLog::default(), Faults::default());
        let wildcards: Vec<String> = (0..15).map(|i| format!("/d{i}/*")).collect();
        let refs: Vec<&str> = wildcards.iter().map(String::as_str).collect();
        assert!(cf.create_invalidation("E1", &batch(&refs, "w")).is_ok());
        let refused = cf
            .create_invalidation("E1", &batch(&["/more/*"], "w2"))
            .err()
            .unwrap();
        assert_eq!(refused.code, "TooManyInvalidationsInProgress");
        // Another distribution has its own limits.
        assert!(cf
            .create_invalidation("E2", &batch(&["/more/*"], "w2"))
            .is_ok());
        cf.set_reads_to_complete(0);
        assert!(cf
            .create_invalidation("E1", &batch(&["/more/*"], "w3"))
            .is_ok());
    }

    #[test]
    fn a_repeated_caller_reference_answers_the_first_or_conflicts() {
        let cf = LocalCloudFront::new(CallLog::default(), Faults::default());
        let first = cf
            .create_invalidation("E1", &batch(&["/a", "/b"], "same"))
            .ok()
            .unwrap()
            .1;
        let again = cf
            .create_invalidation("E1", &batch(&["/b", "/a"], "same"))
            .ok()
            .unwrap()
            .1;
        assert_eq!(cf.invalidations().len(), 1);
        let id = |xml: &str| {
            xml.split("<Id>")
                .nth(1)
                .unwrap()
                .split('<')
                .next()
                .unwrap()
                .to_string()
        };
        assert_eq!(id(&first), id(&again));
        let other = cf
            .create_invalidation("E1", &batch(&["/c"], "same"))
            .err()
            .unwrap();
        assert_eq!(other.code, "InvalidationBatchAlreadyExists");
    }

    #[test]
    fn malformed_batches_are_refused_by_name() {
        for (body, code) in [
            (b"<InvalidationBatch><Paths><Quantity>2</Quantity><Items><Path>/a</Path></Items></Paths><CallerReference>r</CallerReference></InvalidationBatch>".to_vec(), "InconsistentQuantities"),
            (batch(&["a.js"], "r"), "InvalidArgument"),
            (batch(&["/a*/b"], "r"), "InvalidArgument"),
            (batch(&["/a"], ""), "MalformedInput"),
            (b"<Invalid".to_vec(), "MalformedInput"),
        ] {
            let refused = parse_batch(&body).err().unwrap();
            assert_eq!(refused.code, code, "{}", String::from_utf8_lossy(&body));
        }
        let many: Vec<String> = (0..3001).map(|i| format!("/f{i}")).collect();
        let refs: Vec<&str> = many.iter().map(String::as_str).collect();
        assert_eq!(
            parse_batch(&batch(&refs, "r")).err().unwrap().code,
            "BatchTooLarge"
        );
    }

    proptest! {
        #[test]
        fn any_body_is_parsed_or_refused_without_panicking(body in proptest::collection::vec(any::<u8>(), 0..400)) {
            let _ = parse_batch(&body);
        }

        #[test]
        fn paths_round_trip_through_the_xml(paths in proptest::collection::vec("/[a-z0-9 &<>%._-]{0,20}", 1..20)) {
            let items: String = paths.iter().map(|p| format!("<Path>{}</Path>", escape(p))).collect();
            let body = format!("<InvalidationBatch><Paths><Quantity>{}</Quantity><Items>{items}</Items></Paths><CallerReference>r</CallerReference></InvalidationBatch>", paths.len());
            let parsed = parse_batch(body.as_bytes()).ok().unwrap();
            prop_assert_eq!(parsed.paths, paths);
        }
    }
}
