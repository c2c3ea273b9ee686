//! DynamoDB condition and update expressions, as far as the functions write them: top-level
//! attributes (names or `#placeholders`), `:values`, comparisons, `AND`/`OR`/`NOT`, parentheses,
//! `attribute_exists`, `attribute_not_exists`, `begins_with`, `size`, `if_not_exists`,
//! `list_append`, `+`/`-` on numbers, and the `SET`, `REMOVE`, `ADD` and `DELETE` clauses. Anything else is a
//! `ValidationException` naming what is not supported.

use serde_json::{json, Map, Value};

/// An item as DynamoDB's JSON holds it: attribute name to typed value.
pub type Item = Map<String, Value>;

/// Names and values an expression refers to.
pub struct Bindings<'a> {
    /// `ExpressionAttributeNames`.
    pub names: &'a Map<String, Value>,
    /// `ExpressionAttributeValues`.
    pub values: &'a Map<String, Value>,
}

/// One token of an expression.
#[derive(Clone, Debug, PartialEq)]
enum Token {
    /// A keyword, function name or attribute name.
    Word(String),
    /// A `#name` placeholder.
    Name(String),
    /// A `:value` placeholder.
    Value(String),
    /// Punctuation or a comparator.
    Symbol(&'static str),
}

/// Splits an expression into tokens; an unknown character is a `ValidationException`.
fn tokenize(text: &str) -> Result<Vec<Token>, String> {
    let mut tokens = Vec::new();
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        let symbol = match (c, chars.get(i + 1)) {
            ('<', Some('>')) => Some("<>"),
            ('<', Some('=')) => Some("<="),
            ('>', Some('=')) => Some(">="),
            ('<', _) => Some("<"),
            ('>', _) => Some(">"),
            ('=', _) => Some("="),
            ('(', _) => Some("("),
            (')', _) => Some(")"),
            (',', _) => Some(","),
            ('+', _) => Some("+"),
            ('-', _) => Some("-"),
            _ => None,
        };
        if let Some(symbol) = symbol {
            tokens.push(Token::Symbol(symbol));
            i += symbol.len();
            continue;
        }
        let start = i;
        if c == '#' || c == ':' {
            i += 1;
        }
        while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
            i += 1;
        }
        let word: String = chars[start..i].iter().collect();
        match c {
            '#' if word.len() > 1 => tokens.push(Token::Name(word)),
            ':' if word.len() > 1 => tokens.push(Token::Value(word)),
            _ if !word.is_empty() && !word.starts_with(['#', ':']) => {
                tokens.push(Token::Word(word))
            }
            _ => {
                return Err(format!(
                    "Invalid expression: unexpected character '{c}' at {start}"
                ))
            }
        }
    }
    Ok(tokens)
}

/// A recursive-descent parser over one expression's tokens.
struct Parser<'a> {
    /// The tokens.
    tokens: Vec<Token>,
    /// The next token's index.
    at: usize,
    /// The request's placeholders.
    bindings: &'a Bindings<'a>,
}

/// What an operand of a condition or a `SET` action is.
#[derive(Clone, Debug)]
enum Operand {
    /// An attribute of the item.
    Path(String),
    /// A `:value`.
    Value(Value),
    /// `if_not_exists(path, operand)`.
    IfNotExists(String, Box<Operand>),
    /// `a + b` or `a - b`.
    Arithmetic(Box<Operand>, &'static str, Box<Operand>),
    /// `size(path)`.
    Size(String),
    /// `list_append(a, b)`.
    ListAppend(Box<Operand>, Box<Operand>),
}

impl<'a> Parser<'a> {
    /// Tokenizes `text` for parsing with `bindings`.
    fn new(text: &str, bindings: &'a Bindings<'a>) -> Result<Self, String> {
        Ok(Self {
            tokens: tokenize(text)?,
            at: 0,
            bindings,
        })
    }

    /// The next token, not consumed.
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    /// Consumes the next token.
    fn next(&mut self) -> Option<Token> {
        let token = self.tokens.get(self.at).cloned();
        self.at += 1;
        token
    }

    /// Consumes `word` (case-insensitive) when it is next.
    fn keyword(&mut self, word: &str) -> bool {
        if matches!(self.peek(), Some(Token::Word(w)) if w.eq_ignore_ascii_case(word)) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    /// Consumes `symbol` when it is next.
    fn symbol(&mut self, symbol: &str) -> bool {
        if matches!(self.peek(), Some(Token::Symbol(s)) if *s == symbol) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    /// Consumes `symbol`, or says what was found instead.
    fn expect(&mut self, symbol: &str) -> Result<(), String> {
        if self.symbol(symbol) {
            Ok(())
        } else {
            Err(format!(
                "Invalid expression: expected '{symbol}', found {:?}",
                self.peek()
            ))
        }
    }

    /// An attribute path, placeholders resolved.
    fn path(&mut self) -> Result<String, String> {
        match self.next() {
            Some(Token::Word(w)) => Ok(w),
            Some(Token::Name(n)) => self
                .bindings
                .names
                .get(&n)
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| {
                    format!("Value provided in ExpressionAttributeNames unused in expressions or undefined: {n}")
                }),
            other => Err(format!("Invalid expression: expected an attribute, found {other:?}")),
        }
    }

    /// An operand, with `+`/`-` between operands.
    fn operand(&mut self) -> Result<Operand, String> {
        let first = self.single_operand()?;
        for op in ["+", "-"] {
            if self.symbol(op) {
                let second = self.single_operand()?;
                return Ok(Operand::Arithmetic(Box::new(first), op, Box::new(second)));
            }
        }
        Ok(first)
    }

    /// One operand: a function, a value or a path.
    fn single_operand(&mut self) -> Result<Operand, String> {
        match self.peek().cloned() {
            Some(Token::Value(v)) => {
                self.at += 1;
                self.bindings
                    .values
                    .get(&v)
                    .cloned()
                    .map(Operand::Value)
                    .ok_or_else(|| format!("An expression attribute value used in expression is not defined; attribute value: {v}"))
            }
            Some(Token::Word(w)) if w == "size" => {
                self.at += 1;
                self.expect("(")?;
                let path = self.path()?;
                self.expect(")")?;
                Ok(Operand::Size(path))
            }
            Some(Token::Word(w)) if w == "list_append" => {
                self.at += 1;
                self.expect("(")?;
                let first = self.operand()?;
                self.expect(",")?;
                let second = self.operand()?;
                self.expect(")")?;
                Ok(Operand::ListAppend(Box::new(first), Box::new(second)))
            }
            Some(Token::Word(w)) if w == "if_not_exists" => {
                self.at += 1;
                self.expect("(")?;
                let path = self.path()?;
                self.expect(",")?;
                let fallback = self.operand()?;
                self.expect(")")?;
                Ok(Operand::IfNotExists(path, Box::new(fallback)))
            }
            _ => Ok(Operand::Path(self.path()?)),
        }
    }

    /// A condition: `OR` of `AND`s, evaluated against the item (`None`: no item).
    fn condition(&mut self, item: Option<&Item>) -> Result<bool, String> {
        let mut result = self.and(item)?;
        while self.keyword("OR") {
            let right = self.and(item)?;
            result = result || right;
        }
        Ok(result)
    }

    /// `AND` of unary conditions.
    fn and(&mut self, item: Option<&Item>) -> Result<bool, String> {
        let mut result = self.unary(item)?;
        while self.keyword("AND") {
            let right = self.unary(item)?;
            result = result && right;
        }
        Ok(result)
    }

    /// `NOT`, parentheses, a function or a comparison.
    fn unary(&mut self, item: Option<&Item>) -> Result<bool, String> {
        if self.keyword("NOT") {
            return Ok(!self.unary(item)?);
        }
        if self.symbol("(") {
            let inner = self.condition(item)?;
            self.expect(")")?;
            return Ok(inner);
        }
        if let Some(Token::Word(function)) = self.peek().cloned() {
            // `size(…)` is an operand of a comparison, not a condition of its own.
            if function != "size"
                && matches!(self.tokens.get(self.at + 1), Some(Token::Symbol("(")))
            {
                self.at += 2;
                let path = self.path()?;
                let result = match function.as_str() {
                    "attribute_exists" => lookup(item, &path).is_some(),
                    "attribute_not_exists" => lookup(item, &path).is_none(),
                    "begins_with" => {
                        self.expect(",")?;
                        let prefix = evaluate(&self.operand()?, item)?;
                        match (lookup(item, &path), prefix) {
                            (Some(v), Some(p)) => match (v.get("S"), p.get("S")) {
                                (Some(Value::String(v)), Some(Value::String(p))) => v.starts_with(p.as_str()),
                                _ => false,
                            },
                            _ => false,
                        }
                    }
                    other => return Err(format!("Invalid ConditionExpression: the function {other} is not supported by pipeline-local")),
                };
                self.expect(")")?;
                return Ok(result);
            }
        }
        let left = self.operand()?;
        let comparator = match self.next() {
            Some(Token::Symbol(s)) if ["=", "<>", "<", "<=", ">", ">="].contains(&s) => s,
            other => {
                return Err(format!(
                    "Invalid ConditionExpression: expected a comparator, found {other:?}"
                ))
            }
        };
        let right = self.operand()?;
        let (left, right) = (evaluate(&left, item)?, evaluate(&right, item)?);
        Ok(match (left, right) {
            (Some(l), Some(r)) => compare(&l, comparator, &r),
            _ => comparator == "<>",
        })
    }
}

/// The value at `path` in the item.
fn lookup<'a>(item: Option<&'a Item>, path: &str) -> Option<&'a Value> {
    item?.get(path)
}

/// The value of an operand on the item; `None` when it names nothing.
fn evaluate(operand: &Operand, item: Option<&Item>) -> Result<Option<Value>, String> {
    Ok(match operand {
        Operand::Value(v) => Some(v.clone()),
        Operand::Path(p) => lookup(item, p).cloned(),
        Operand::Size(p) => lookup(item, p).and_then(|v| {
            let size = match v.as_object()?.iter().next()? {
                (kind, Value::String(s)) if kind == "S" => s.chars().count(),
                (kind, Value::String(b)) if kind == "B" => b.len() * 3 / 4,
                (_, Value::Array(items)) => items.len(),
                (_, Value::Object(map)) => map.len(),
                _ => return None,
            };
            Some(json!({"N": size.to_string()}))
        }),
        Operand::ListAppend(a, b) => {
            let list = |v: Option<Value>| -> Result<Vec<Value>, String> {
                v.as_ref()
                    .and_then(|v| v.get("L"))
                    .and_then(Value::as_array)
                    .cloned()
                    .ok_or_else(|| {
                        "An operand in the update expression has an incorrect data type".to_string()
                    })
            };
            let mut joined = list(evaluate(a, item)?)?;
            joined.extend(list(evaluate(b, item)?)?);
            Some(json!({"L": joined}))
        }
        Operand::IfNotExists(p, fallback) => match lookup(item, p) {
            Some(v) => Some(v.clone()),
            None => evaluate(fallback, item)?,
        },
        Operand::Arithmetic(a, op, b) => {
            let number = |v: Option<Value>| -> Result<f64, String> {
                v.as_ref()
                    .and_then(|v| v.get("N"))
                    .and_then(Value::as_str)
                    .and_then(|n| n.parse().ok())
                    .ok_or_else(|| {
                        "An operand in the update expression has an incorrect data type".to_string()
                    })
            };
            let (a, b) = (number(evaluate(a, item)?)?, number(evaluate(b, item)?)?);
            let n = if *op == "+" { a + b } else { a - b };
            Some(json!({"N": format_number(n)}))
        }
    })
}

/// A number as DynamoDB writes it (no `.0` on whole numbers).
fn format_number(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        format!("{}", n as i64)
    } else {
        n.to_string()
    }
}

/// Compares typed values: numbers as numbers, strings and binaries as bytes.
fn compare(left: &Value, comparator: &str, right: &Value) -> bool {
    use std::cmp::Ordering;
    let ordering = match (left.get("N"), right.get("N"), left.get("S"), right.get("S")) {
        (Some(Value::String(a)), Some(Value::String(b)), _, _) => {
            match (a.parse::<f64>(), b.parse::<f64>()) {
                (Ok(a), Ok(b)) => a.partial_cmp(&b),
                _ => None,
            }
        }
        (_, _, Some(Value::String(a)), Some(Value::String(b))) => Some(a.cmp(b)),
        _ => (left == right).then_some(Ordering::Equal),
    };
    match (comparator, ordering) {
        ("=", Some(o)) => o == Ordering::Equal,
        ("<>", o) => o != Some(Ordering::Equal),
        ("<", Some(o)) => o == Ordering::Less,
        ("<=", Some(o)) => o != Ordering::Greater,
        (">", Some(o)) => o == Ordering::Greater,
        (">=", Some(o)) => o != Ordering::Less,
        _ => false,
    }
}

/// Evaluates a `ConditionExpression` against the item as stored (`None`: no item).
pub fn condition_holds(
    text: &str,
    item: Option<&Item>,
    bindings: &Bindings,
) -> Result<bool, String> {
    let mut parser = Parser::new(text, bindings)?;
    let result = parser.condition(item)?;
    if parser.at < parser.tokens.len() {
        return Err(format!(
            "Invalid ConditionExpression: unexpected {:?}",
            parser.tokens[parser.at]
        ));
    }
    Ok(result)
}

/// Applies an `UpdateExpression` to `item`.
pub fn apply_update(text: &str, item: &mut Item, bindings: &Bindings) -> Result<(), String> {
    let mut parser = Parser::new(text, bindings)?;
    while parser.peek().is_some() {
        let clause = match parser.next() {
            Some(Token::Word(w)) => w.to_ascii_uppercase(),
            other => {
                return Err(format!(
                "Invalid UpdateExpression: expected SET, REMOVE, ADD or DELETE, found {other:?}"
            ))
            }
        };
        loop {
            let path = parser.path()?;
            match clause.as_str() {
                "SET" => {
                    parser.expect("=")?;
                    let operand = parser.operand()?;
                    let value = evaluate(&operand, Some(item))?
                        .ok_or("The provided expression refers to an attribute that does not exist in the item")?;
                    item.insert(path, value);
                }
                "REMOVE" => {
                    item.remove(&path);
                }
                "ADD" | "DELETE" => {
                    let value = evaluate(&parser.single_operand()?, Some(item))?
                        .ok_or("Invalid UpdateExpression: ADD and DELETE take a value")?;
                    add_or_delete(item, path, value, clause == "ADD")?;
                }
                other => return Err(format!("Invalid UpdateExpression: unknown clause {other}")),
            }
            if !parser.symbol(",") {
                break;
            }
        }
    }
    Ok(())
}

/// `ADD` (numbers and sets) or `DELETE` (sets) on one attribute.
fn add_or_delete(item: &mut Item, path: String, value: Value, add: bool) -> Result<(), String> {
    let set_kind = ["SS", "NS", "BS"]
        .into_iter()
        .find(|k| value.get(*k).is_some());
    if let Some(kind) = set_kind {
        let given: Vec<Value> = value[kind].as_array().cloned().unwrap_or_default();
        let mut current: Vec<Value> = item
            .get(&path)
            .and_then(|v| v.get(kind))
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if add {
            for v in given {
                if !current.contains(&v) {
                    current.push(v);
                }
            }
        } else {
            current.retain(|v| !given.contains(v));
        }
        if current.is_empty() {
            item.remove(&path);
        } else {
            item.insert(path, json!({kind: current}));
        }
        return Ok(());
    }
    if add {
        if let Some(n) = value.get("N") {
            let current = item
                .get(&path)
                .and_then(|v| v.get("N"))
                .and_then(Value::as_str)
                .and_then(|n| n.parse::<f64>().ok())
                .unwrap_or(0.0);
            let add: f64 = n
                .as_str()
                .and_then(|n| n.parse().ok())
                .ok_or("Invalid number")?;
            item.insert(path, json!({"N": format_number(current + add)}));
            return Ok(());
        }
    }
    Err("Invalid UpdateExpression: ADD and DELETE take a number or a set".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bindings() -> (Map<String, Value>, Map<String, Value>) {
        let names = json!({"#v": "version", "#s": "status"})
            .as_object()
            .unwrap()
            .clone();
        let values = json!({":one": {"N": "1"}, ":two": {"N": "2"}, ":now": {"N": "100"},
            ":posting": {"S": "posting"}, ":keys": {"SS": ["a", "b"]}})
        .as_object()
        .unwrap()
        .clone();
        (names, values)
    }

    #[test]
    fn evaluates_conditions_like_dynamodb() {
        let (names, values) = bindings();
        let b = Bindings {
            names: &names,
            values: &values,
        };
        let item = json!({"pk": {"S": "x"}, "version": {"N": "1"}, "lease_until": {"N": "50"}})
            .as_object()
            .unwrap()
            .clone();
        assert!(condition_holds("attribute_not_exists(pk)", None, &b).unwrap());
        assert!(!condition_holds("attribute_not_exists(pk)", Some(&item), &b).unwrap());
        assert!(condition_holds("#v = :one", Some(&item), &b).unwrap());
        assert!(condition_holds(
            "attribute_exists(pk) AND (attribute_not_exists(lease_until) OR lease_until < :now)",
            Some(&item),
            &b
        )
        .unwrap());
        assert!(!condition_holds("#s = :posting AND version < :two", Some(&item), &b).unwrap());
        assert!(condition_holds("NOT #v = :two", Some(&item), &b).unwrap());
        assert!(!condition_holds("size(pk) > :one", Some(&item), &b).unwrap());
        assert!(condition_holds("size(pk) = :one", Some(&item), &b).unwrap());
        assert!(condition_holds(
            "attribute_not_exists(clicks) OR size(clicks) < :two",
            Some(&item),
            &b
        )
        .unwrap());
        assert!(condition_holds("contains(pk, :one)", Some(&item), &b)
            .unwrap_err()
            .contains("contains"));
    }

    #[test]
    fn appends_to_lists() {
        let (names, mut values) = bindings();
        values.insert(":none".into(), json!({"L": []}));
        values.insert(":click".into(), json!({"L": [{"S": "a"}]}));
        let b = Bindings {
            names: &names,
            values: &values,
        };
        let mut item = json!({"pk": {"S": "x"}}).as_object().unwrap().clone();
        for _ in 0..2 {
            apply_update(
                "SET clicks = list_append(if_not_exists(clicks, :none), :click)",
                &mut item,
                &b,
            )
            .unwrap();
        }
        assert_eq!(item["clicks"], json!({"L": [{"S": "a"}, {"S": "a"}]}));
        assert!(condition_holds("size(clicks) < :two", Some(&item), &b)
            .map(|h| !h)
            .unwrap());
        assert!(apply_update("SET pk = list_append(pk, :click)", &mut item, &b).is_err());
    }

    #[test]
    fn applies_set_remove_and_add() {
        let (names, values) = bindings();
        let b = Bindings {
            names: &names,
            values: &values,
        };
        let mut item = json!({"pk": {"S": "x"}, "lease_owner": {"S": "me"}})
            .as_object()
            .unwrap()
            .clone();
        apply_update(
            "SET #v = if_not_exists(#v, :one) + :two, lease_until = :now REMOVE lease_owner ADD replied :keys",
            &mut item,
            &b,
        )
        .unwrap();
        assert_eq!(item["version"], json!({"N": "3"}));
        assert_eq!(item["lease_until"], json!({"N": "100"}));
        assert!(!item.contains_key("lease_owner"));
        assert_eq!(item["replied"], json!({"SS": ["a", "b"]}));
    }
}
