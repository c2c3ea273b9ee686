//! Updates and conditions on one item, written as values and rendered into DynamoDB's
//! expression language with generated placeholders, so no caller spells an expression, an
//! attribute name that collides with a reserved word (`status`, `record`, `source`…), or a
//! placeholder twice.

use aws_sdk_dynamodb::types::AttributeValue;
use std::collections::HashMap;

/// A condition on the item as stored, checked by DynamoDB atomically with the write.
#[derive(Clone, Debug, PartialEq)]
pub enum Condition {
    /// The item exists.
    ItemExists,
    /// No item has this key yet.
    ItemAbsent,
    /// The attribute is present.
    Exists(String),
    /// The attribute is absent.
    Absent(String),
    /// The attribute equals the value.
    Equals(String, AttributeValue),
    /// The attribute is less than the value (numbers compare as numbers).
    LessThan(String, AttributeValue),
    /// The attribute (a list, set, string) has fewer than this many elements.
    SizeBelow(String, usize),
    /// Both hold.
    And(Box<Condition>, Box<Condition>),
    /// Either holds.
    Or(Box<Condition>, Box<Condition>),
}

impl Condition {
    /// The attribute is present.
    pub fn exists(attribute: &str) -> Self {
        Self::Exists(attribute.into())
    }

    /// The attribute is absent.
    pub fn absent(attribute: &str) -> Self {
        Self::Absent(attribute.into())
    }

    /// The attribute holds this string.
    pub fn text_is(attribute: &str, value: &str) -> Self {
        Self::Equals(attribute.into(), AttributeValue::S(value.into()))
    }

    /// The attribute holds this number.
    pub fn number_is(attribute: &str, value: u64) -> Self {
        Self::Equals(attribute.into(), AttributeValue::N(value.to_string()))
    }

    /// The attribute holds a number below this one.
    pub fn number_below(attribute: &str, value: u64) -> Self {
        Self::LessThan(attribute.into(), AttributeValue::N(value.to_string()))
    }

    /// The attribute is absent or has fewer than `size` elements.
    pub fn size_below(attribute: &str, size: usize) -> Self {
        Self::absent(attribute).or(Self::SizeBelow(attribute.into(), size))
    }

    /// This and `other`.
    pub fn and(self, other: Condition) -> Self {
        Self::And(Box::new(self), Box::new(other))
    }

    /// This or `other`.
    pub fn or(self, other: Condition) -> Self {
        Self::Or(Box::new(self), Box::new(other))
    }

    pub(crate) fn render(&self, to: &mut Placeholders) -> String {
        match self {
            Self::ItemExists => "attribute_exists(pk)".into(),
            Self::ItemAbsent => "attribute_not_exists(pk)".into(),
            Self::Exists(a) => format!("attribute_exists({})", to.name(a)),
            Self::Absent(a) => format!("attribute_not_exists({})", to.name(a)),
            Self::Equals(a, v) => format!("{} = {}", to.name(a), to.value(v.clone())),
            Self::LessThan(a, v) => format!("{} < {}", to.name(a), to.value(v.clone())),
            Self::SizeBelow(a, n) => format!(
                "size({}) < {}",
                to.name(a),
                to.value(AttributeValue::N(n.to_string()))
            ),
            Self::And(l, r) => format!("({}) AND ({})", l.render(to), r.render(to)),
            Self::Or(l, r) => format!("({}) OR ({})", l.render(to), r.render(to)),
        }
    }
}

/// What one write changes on an item, and the condition it is made under.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Update {
    actions: Vec<Action>,
    condition: Option<Condition>,
}

#[derive(Clone, Debug, PartialEq)]
enum Action {
    Set(String, AttributeValue),
    SetIfAbsent(String, AttributeValue),
    Append(String, Vec<AttributeValue>),
    AddToSet(String, Vec<String>),
    Remove(String),
}

impl Update {
    /// An update that changes nothing yet (the table adds the expiry to every write).
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets an attribute.
    pub fn set(mut self, attribute: &str, value: AttributeValue) -> Self {
        self.actions.push(Action::Set(attribute.into(), value));
        self
    }

    /// Sets a string attribute.
    pub fn set_text(self, attribute: &str, value: impl Into<String>) -> Self {
        self.set(attribute, AttributeValue::S(value.into()))
    }

    /// Sets a number attribute.
    pub fn set_number(self, attribute: &str, value: u64) -> Self {
        self.set(attribute, AttributeValue::N(value.to_string()))
    }

    /// Sets an attribute only where the item does not have it yet.
    pub fn set_if_absent(mut self, attribute: &str, value: AttributeValue) -> Self {
        self.actions
            .push(Action::SetIfAbsent(attribute.into(), value));
        self
    }

    /// Appends to a list attribute, creating it when absent.
    pub fn append(mut self, attribute: &str, values: Vec<AttributeValue>) -> Self {
        self.actions.push(Action::Append(attribute.into(), values));
        self
    }

    /// Adds strings to a string-set attribute, creating it when absent.
    pub fn add_to_set(mut self, attribute: &str, values: Vec<String>) -> Self {
        self.actions
            .push(Action::AddToSet(attribute.into(), values));
        self
    }

    /// Removes an attribute.
    pub fn remove(mut self, attribute: &str) -> Self {
        self.actions.push(Action::Remove(attribute.into()));
        self
    }

    /// Makes the write conditional; a second call adds its condition with AND.
    pub fn when(mut self, condition: Condition) -> Self {
        self.condition = Some(match self.condition.take() {
            Some(existing) => existing.and(condition),
            None => condition,
        });
        self
    }

    /// The update expression and the condition expression, with their placeholders.
    pub(crate) fn render(&self) -> Rendered {
        let mut to = Placeholders::default();
        let (mut set, mut add, mut remove) = (Vec::new(), Vec::new(), Vec::new());
        for action in &self.actions {
            match action {
                Action::Set(a, v) => set.push(format!("{} = {}", to.name(a), to.value(v.clone()))),
                Action::SetIfAbsent(a, v) => {
                    let name = to.name(a);
                    set.push(format!(
                        "{name} = if_not_exists({name}, {})",
                        to.value(v.clone())
                    ));
                }
                Action::Append(a, values) => {
                    let name = to.name(a);
                    let empty = to.value(AttributeValue::L(Vec::new()));
                    let values = to.value(AttributeValue::L(values.clone()));
                    set.push(format!(
                        "{name} = list_append(if_not_exists({name}, {empty}), {values})"
                    ));
                }
                Action::AddToSet(a, values) => add.push(format!(
                    "{} {}",
                    to.name(a),
                    to.value(AttributeValue::Ss(values.clone()))
                )),
                Action::Remove(a) => remove.push(to.name(a)),
            }
        }
        let mut clauses = Vec::new();
        if !set.is_empty() {
            clauses.push(format!("SET {}", set.join(", ")));
        }
        if !add.is_empty() {
            clauses.push(format!("ADD {}", add.join(", ")));
        }
        if !remove.is_empty() {
            clauses.push(format!("REMOVE {}", remove.join(", ")));
        }
        let condition = self.condition.as_ref().map(|c| c.render(&mut to));
        Rendered {
            update: clauses.join(" "),
            condition,
            names: to.names,
            values: to.values,
        }
    }
}

/// An update in DynamoDB's expression language.
#[derive(Debug)]
pub(crate) struct Rendered {
    pub update: String,
    pub condition: Option<String>,
    pub names: HashMap<String, String>,
    pub values: HashMap<String, AttributeValue>,
}

/// Generated `#nN` and `:vN` placeholders; an attribute named twice gets one placeholder.
#[derive(Debug, Default)]
pub(crate) struct Placeholders {
    pub names: HashMap<String, String>,
    pub values: HashMap<String, AttributeValue>,
}

impl Placeholders {
    pub(crate) fn name(&mut self, attribute: &str) -> String {
        if let Some((placeholder, _)) = self.names.iter().find(|(_, a)| *a == attribute) {
            return placeholder.clone();
        }
        let placeholder = format!("#n{}", self.names.len());
        self.names.insert(placeholder.clone(), attribute.into());
        placeholder
    }

    pub(crate) fn value(&mut self, value: AttributeValue) -> String {
        let placeholder = format!(":v{}", self.values.len());
        self.values.insert(placeholder.clone(), value);
        placeholder
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_clause_with_one_placeholder_per_attribute() {
        let rendered = Update::new()
            .set_text("status", "posted")
            .append("clicks", vec![AttributeValue::S("a".into())])
            .add_to_set("replied", vec!["k".into()])
            .remove("lease_owner")
            .when(Condition::text_is("status", "posting"))
            .render();
        assert_eq!(
            rendered.update,
            "SET #n0 = :v0, #n1 = list_append(if_not_exists(#n1, :v1), :v2) ADD #n2 :v3 REMOVE #n3"
        );
        assert_eq!(rendered.condition.as_deref(), Some("#n0 = :v4"));
        assert_eq!(rendered.names["#n0"], "status");
        assert_eq!(rendered.values.len(), 5);
    }

    #[test]
    fn conditions_nest_in_parentheses() {
        let mut to = Placeholders::default();
        let condition = Condition::absent("decision")
            .or(Condition::text_is("decision", "deciding").and(Condition::number_below("at", 5)));
        assert_eq!(
            condition.render(&mut to),
            "(attribute_not_exists(#n0)) OR ((#n0 = :v0) AND (#n1 < :v1))"
        );
    }
}
