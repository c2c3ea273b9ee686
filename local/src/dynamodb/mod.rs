//! A local DynamoDB endpoint (`awsJson1_0`, `X-Amz-Target: DynamoDB_20120810.<Operation>`)
//! for the notifiers' execution table: `CreateTable`, `DescribeTable`, `GetItem`, `PutItem`,
//! `UpdateItem`, `DeleteItem` and `Scan`, with condition and update expressions
//! (the `expression` module). Items live in memory, keyed by the table's hash (and range) key.

mod expression;

use crate::calls::CallLog;
use crate::faults::Faults;
use crate::service::{AwsJson, JsonService, ServiceError};
use axum::Router;
use expression::{apply_update, condition_holds, Bindings, Item};
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

/// A table.
struct Table {
    /// Its key attributes.
    key: Vec<String>,
    /// Items by their key attributes, serialized.
    items: BTreeMap<String, Item>,
}

/// Shared state of the local DynamoDB endpoint.
#[derive(Clone)]
pub struct LocalDynamoDb {
    /// Tables by name.
    tables: Arc<Mutex<HashMap<String, Table>>>,
    /// Every call answered.
    calls: CallLog,
    /// Planned failures.
    faults: Faults,
}

/// A response or DynamoDB's error.
type Answer = Result<Value, ServiceError>;

/// A `ValidationException`-like error.
fn bad(code: &str, message: impl Into<String>) -> ServiceError {
    ServiceError::client(code, message)
}

impl LocalDynamoDb {
    /// An empty DynamoDB recording into `calls`, answering `faults` first.
    pub fn new(calls: CallLog, faults: Faults) -> Self {
        Self {
            tables: Arc::default(),
            calls,
            faults,
        }
    }

    /// The endpoint's routes (awsJson 1.0).
    pub fn router(&self) -> Router {
        crate::service::router(self.clone(), self.calls.clone(), self.faults.clone())
    }

    /// Creates a table keyed by `key` (hash key, then optional range key), as a template declares it.
    pub fn create_table(&self, name: &str, key: &[&str]) {
        self.lock().insert(
            name.to_string(),
            Table {
                key: key.iter().map(|k| k.to_string()).collect(),
                items: BTreeMap::new(),
            },
        );
    }

    /// Every item of a table, in key order.
    pub fn items(&self, table: &str) -> Vec<Value> {
        self.lock()
            .get(table)
            .map(|t| t.items.values().map(|i| Value::Object(i.clone())).collect())
            .unwrap_or_default()
    }

    /// The tables, under their lock.
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Table>> {
        self.tables
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Dispatches one operation.
    fn operation(&self, operation: &str, request: &Value) -> Answer {
        match operation {
            "CreateTable" => self.create(request),
            "DescribeTable" => self.describe(request),
            "GetItem" => self.get_item(request),
            "PutItem" => self.put_item(request),
            "UpdateItem" => self.update_item(request),
            "DeleteItem" => self.delete_item(request),
            "Scan" => self.scan(request),
            other => Err(ServiceError::unknown_operation(other)),
        }
    }

    /// `CreateTable`.
    fn create(&self, request: &Value) -> Answer {
        let name = table_name(request)?;
        let schema = request["KeySchema"].as_array().cloned().unwrap_or_default();
        let mut key: Vec<(String, String)> = schema
            .iter()
            .map(|k| {
                (
                    k["KeyType"].as_str().unwrap_or("").to_string(),
                    k["AttributeName"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect();
        key.sort();
        if key.is_empty() || key[0].0 != "HASH" {
            return Err(bad("ValidationException", "KeySchema needs a HASH key"));
        }
        if self.lock().contains_key(name) {
            return Err(bad(
                "ResourceInUseException",
                format!("Table already exists: {name}"),
            ));
        }
        let names: Vec<&str> = key.iter().map(|(_, n)| n.as_str()).collect();
        self.create_table(name, &names);
        Ok(json!({"TableDescription": describe_table(name, &names)}))
    }

    /// `DescribeTable`.
    fn describe(&self, request: &Value) -> Answer {
        let name = table_name(request)?;
        let tables = self.lock();
        let table = tables.get(name).ok_or_else(|| not_found(name))?;
        let key: Vec<&str> = table.key.iter().map(String::as_str).collect();
        Ok(json!({"Table": describe_table(name, &key)}))
    }

    /// `GetItem`.
    fn get_item(&self, request: &Value) -> Answer {
        let name = table_name(request)?;
        let tables = self.lock();
        let table = tables.get(name).ok_or_else(|| not_found(name))?;
        let key = item_key(table, &request["Key"], true)?;
        Ok(match table.items.get(&key) {
            Some(item) => json!({"Item": item}),
            None => json!({}),
        })
    }

    /// `PutItem`.
    fn put_item(&self, request: &Value) -> Answer {
        let name = table_name(request)?;
        let item = request["Item"]
            .as_object()
            .cloned()
            .ok_or_else(|| bad("ValidationException", "Item is required"))?;
        let mut tables = self.lock();
        let table = tables.get_mut(name).ok_or_else(|| not_found(name))?;
        let key = item_key(table, &Value::Object(item.clone()), false)?;
        check_condition(request, table.items.get(&key))?;
        let old = table.items.insert(key, item);
        Ok(returned(request, old, None))
    }

    /// `UpdateItem`.
    fn update_item(&self, request: &Value) -> Answer {
        let name = table_name(request)?;
        let mut tables = self.lock();
        let table = tables.get_mut(name).ok_or_else(|| not_found(name))?;
        let key = item_key(table, &request["Key"], true)?;
        let existing = table.items.get(&key).cloned();
        check_condition(request, existing.as_ref())?;
        let mut item = existing
            .clone()
            .unwrap_or_else(|| request["Key"].as_object().cloned().unwrap_or_default());
        if let Some(update) = request["UpdateExpression"].as_str() {
            let (names, values) = bindings(request);
            apply_update(
                update,
                &mut item,
                &Bindings {
                    names: &names,
                    values: &values,
                },
            )
            .map_err(|e| bad("ValidationException", e))?;
        }
        for k in &table.key {
            if item.get(k) != request["Key"].get(k) {
                return Err(bad(
                    "ValidationException",
                    format!("Cannot update attribute {k}. This attribute is part of the key"),
                ));
            }
        }
        table.items.insert(key, item.clone());
        Ok(returned(request, existing, Some(item)))
    }

    /// `DeleteItem`.
    fn delete_item(&self, request: &Value) -> Answer {
        let name = table_name(request)?;
        let mut tables = self.lock();
        let table = tables.get_mut(name).ok_or_else(|| not_found(name))?;
        let key = item_key(table, &request["Key"], true)?;
        check_condition(request, table.items.get(&key))?;
        let old = table.items.remove(&key);
        Ok(returned(request, old, None))
    }

    /// `Scan`.
    fn scan(&self, request: &Value) -> Answer {
        let name = table_name(request)?;
        let tables = self.lock();
        let table = tables.get(name).ok_or_else(|| not_found(name))?;
        let items: Vec<&Item> = table.items.values().collect();
        Ok(json!({"Items": items, "Count": items.len(), "ScannedCount": items.len()}))
    }
}

/// `TableName`.
fn table_name(request: &Value) -> Result<&str, ServiceError> {
    request["TableName"]
        .as_str()
        .filter(|n| !n.is_empty())
        .ok_or_else(|| bad("ValidationException", "TableName is required"))
}

/// `ResourceNotFoundException`.
fn not_found(name: &str) -> ServiceError {
    bad(
        "ResourceNotFoundException",
        format!("Requested resource not found: Table: {name} not found"),
    )
}

/// A table as `DescribeTable` shows it.
fn describe_table(name: &str, key: &[&str]) -> Value {
    let types = ["HASH", "RANGE"];
    json!({
        "TableName": name, "TableStatus": "ACTIVE",
        "TableArn": format!("arn:aws:dynamodb:{}:000000000000:table/{name}", crate::endpoints::REGION),
        "KeySchema": key.iter().zip(types).map(|(k, t)| json!({"AttributeName": k, "KeyType": t})).collect::<Vec<_>>(),
        "BillingModeSummary": {"BillingMode": "PAY_PER_REQUEST"}
    })
}

/// The stored key of an item: its key attributes, which must all be there (and, for a `Key`
/// parameter, be the only attributes).
fn item_key(table: &Table, key: &Value, exact: bool) -> Result<String, ServiceError> {
    let given = key
        .as_object()
        .ok_or_else(|| bad("ValidationException", "Key is required"))?;
    let mut parts = Map::new();
    for name in &table.key {
        let value = given.get(name).ok_or_else(|| {
            bad(
                "ValidationException",
                "The provided key element does not match the schema",
            )
        })?;
        parts.insert(name.clone(), value.clone());
    }
    if exact && given.len() != table.key.len() {
        return Err(bad(
            "ValidationException",
            "The provided key element does not match the schema",
        ));
    }
    Ok(Value::Object(parts).to_string())
}

/// The request's attribute names and values.
fn bindings(request: &Value) -> (Map<String, Value>, Map<String, Value>) {
    let get = |field: &str| request[field].as_object().cloned().unwrap_or_default();
    (
        get("ExpressionAttributeNames"),
        get("ExpressionAttributeValues"),
    )
}

/// `ConditionExpression` against the item; `ConditionalCheckFailedException` when it does not hold.
fn check_condition(request: &Value, existing: Option<&Item>) -> Result<(), ServiceError> {
    let Some(condition) = request["ConditionExpression"].as_str() else {
        return Ok(());
    };
    let (names, values) = bindings(request);
    let holds = condition_holds(
        condition,
        existing,
        &Bindings {
            names: &names,
            values: &values,
        },
    )
    .map_err(|e| bad("ValidationException", e))?;
    if holds {
        Ok(())
    } else {
        Err(bad(
            "ConditionalCheckFailedException",
            "The conditional request failed",
        ))
    }
}

/// `ReturnValues`: the old or new item, or nothing.
fn returned(request: &Value, old: Option<Item>, new: Option<Item>) -> Value {
    match request["ReturnValues"].as_str().unwrap_or("NONE") {
        "ALL_OLD" => old.map(|i| json!({"Attributes": i})).unwrap_or(json!({})),
        "ALL_NEW" => new.map(|i| json!({"Attributes": i})).unwrap_or(json!({})),
        _ => json!({}),
    }
}

impl JsonService for LocalDynamoDb {
    const NAME: &'static str = "dynamodb";
    const TARGET_PREFIX: &'static str = "DynamoDB_20120810";
    const AWS_JSON: AwsJson = AwsJson::V1_0;
    const ERROR_TYPE_PREFIX: &'static str = "com.amazonaws.dynamodb.v20120810#";

    fn dispatch(&self, operation: &str, request: &Value) -> Answer {
        self.operation(operation, request)
    }

    fn call_detail(&self, request: &Value) -> Value {
        json!({"TableName": request["TableName"]})
    }
}
