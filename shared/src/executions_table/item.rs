//! One item as read: typed access to its attributes.

use super::{ItemKey, TableError};
use aws_sdk_dynamodb::types::AttributeValue;
use std::collections::HashMap;

/// An item of the executions table as DynamoDB returned it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StoredItem {
    key: String,
    attributes: HashMap<String, AttributeValue>,
}

impl StoredItem {
    pub(crate) fn new(key: &ItemKey, attributes: HashMap<String, AttributeValue>) -> Self {
        Self {
            key: key.to_string(),
            attributes,
        }
    }

    /// The item's key as stored.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Whether the attribute is present.
    pub fn has(&self, name: &str) -> bool {
        self.attributes.contains_key(name)
    }

    /// A string attribute.
    pub fn text(&self, name: &str) -> Option<&str> {
        self.attributes.get(name)?.as_s().ok().map(String::as_str)
    }

    /// A non-empty string attribute, owned.
    pub fn nonempty_text(&self, name: &str) -> Option<String> {
        self.text(name).filter(|t| !t.is_empty()).map(str::to_owned)
    }

    /// A number attribute that holds a whole number of at most 64 bits.
    pub fn number(&self, name: &str) -> Option<u64> {
        self.attributes.get(name)?.as_n().ok()?.parse().ok()
    }

    /// A string-set attribute (empty when absent).
    pub fn string_set(&self, name: &str) -> Vec<String> {
        self.attributes
            .get(name)
            .and_then(|v| v.as_ss().ok())
            .cloned()
            .unwrap_or_default()
    }

    /// The strings of a list attribute (other elements skipped; empty when absent).
    pub fn string_list(&self, name: &str) -> Vec<String> {
        self.list(name)
            .iter()
            .filter_map(|v| v.as_s().ok().cloned())
            .collect()
    }

    /// The elements of a list attribute (empty when absent).
    pub fn list(&self, name: &str) -> &[AttributeValue] {
        self.attributes
            .get(name)
            .and_then(|v| v.as_l().ok())
            .map(Vec::as_slice)
            .unwrap_or_default()
    }

    /// A string attribute that holds JSON, read as `T`; `None` when absent.
    pub fn json<T: serde::de::DeserializeOwned>(
        &self,
        name: &str,
    ) -> Result<Option<T>, TableError> {
        self.text(name)
            .map(|text| {
                serde_json::from_str(text).map_err(|e| TableError::Unreadable {
                    key: self.key.clone(),
                    attribute: name.into(),
                    reason: e.to_string(),
                })
            })
            .transpose()
    }
}
