//! JSON Schema validation of tool arguments, with messages a model can act on: every
//! violation, its JSON path, and what is allowed there.

use jsonschema::error::{TypeKind, ValidationErrorKind};
use jsonschema::{ValidationError, Validator};
use serde_json::Value;

use webops_client::{
    DEPLOYMENT_NAME_PATTERN, DEPLOYMENT_NAME_RULE, DEPLOYMENT_REF_PATTERN, DEPLOYMENT_REF_RULE,
};

use crate::redact::{REDACTED, is_secret_name, mask_secrets_in_text};
use crate::tool::ToolError;

/// The longest rendering of an offending value in a message.
const MAX_VALUE_CHARS: usize = 60;

/// A compiled input schema.
pub(crate) struct ArgsValidator {
    schema: Value,
    validator: Validator,
}

impl ArgsValidator {
    /// Compiles `schema`; the error says why it is not a valid JSON Schema.
    pub(crate) fn new(schema: Value) -> Result<Self, String> {
        let validator = jsonschema::validator_for(&schema).map_err(|e| e.to_string())?;
        Ok(ArgsValidator { schema, validator })
    }

    /// Checks `args`, reporting every violation:
    /// `invalid arguments for TOOL: /path: what is wrong; /other: ...`.
    pub(crate) fn check(&self, tool: &str, args: &Value) -> Result<(), ToolError> {
        let mut problems: Vec<(String, String)> = self
            .validator
            .iter_errors(args)
            .map(|error| describe(&error, &self.schema))
            .collect();
        if problems.is_empty() {
            return Ok(());
        }
        problems.sort();
        problems.dedup();
        let listed: Vec<String> = problems
            .into_iter()
            .map(|(path, message)| format!("{path}: {message}"))
            .collect();
        Err(ToolError::invalid(format!(
            "invalid arguments for {tool}: {}",
            listed.join("; ")
        )))
    }

    /// Whether `value` conforms (used to check tool output in debug builds).
    #[cfg(debug_assertions)]
    pub(crate) fn is_valid(&self, value: &Value) -> bool {
        self.validator.is_valid(value)
    }
}

/// One violation as (JSON path, message).
fn describe(error: &ValidationError<'_>, schema: &Value) -> (String, String) {
    // Member names in the path are the caller's input: a token pasted as a key is masked.
    let path = mask_secrets_in_text(error.instance_path().as_str()).into_owned();
    let secret = path_is_secret(&path);
    let shown = show(error.instance(), secret);
    let schema_path = error.schema_path().as_str();
    let message = match error.kind() {
        ValidationErrorKind::Required { property } => {
            return missing_property(schema, schema_path, &path, property);
        }
        ValidationErrorKind::AdditionalProperties { unexpected }
        | ValidationErrorKind::UnevaluatedProperties { unexpected } => {
            return unknown_properties(schema, schema_path, path, unexpected);
        }
        ValidationErrorKind::Enum { .. }
        | ValidationErrorKind::Constant { .. }
        | ValidationErrorKind::AnyOf { .. }
        | ValidationErrorKind::OneOfNotValid { .. } => {
            let here = schema.pointer(schema_path_without_keyword(schema_path));
            match here.map(allowed_values) {
                Some(Some(values)) if !values.is_empty() => {
                    format!("{shown} is not one of {}", or_list(&values))
                }
                _ => match (here.and_then(branch_descriptions), here.and_then(type_hint)) {
                    (Some(allowed), _) => {
                        format!("{shown} is not valid; allowed: {}", allowed.join("; or "))
                    }
                    (None, Some(types)) => format!("{shown} is not valid: expected {types}"),
                    (None, None) => plain(error, &shown),
                },
            }
        }
        // A `not` that says what it excludes: `"2048" is not allowed: it must not be digits
        // only (...)`, instead of the excluded schema as JSON.
        ValidationErrorKind::Not { schema: excluded } => {
            match excluded.get("description").and_then(Value::as_str) {
                Some(what) => format!("{shown} is not allowed: it must not be {what}"),
                None => plain(error, &shown),
            }
        }
        // The pattern, and what it means in words when they are known or its schema
        // describes it.
        ValidationErrorKind::Pattern { pattern } => {
            let described = pattern_in_words(pattern).or_else(|| {
                parent_schema(schema, schema_path)
                    .and_then(|s| s.get("description"))
                    .and_then(Value::as_str)
                    .map(|what| what.replace('\n', " "))
            });
            match described {
                Some(what) => format!("{shown} does not match {pattern} (what is allowed: {what})"),
                None => format!("{shown} does not match {pattern}"),
            }
        }
        ValidationErrorKind::Type { kind } => {
            with_pattern_words(type_mismatch(kind, error, &shown), schema, schema_path)
        }
        _ => with_pattern_words(plain(error, &shown), schema, schema_path),
    };
    (
        if path.is_empty() {
            "/".to_owned()
        } else {
            path
        },
        message,
    )
}

/// What the patterns of the built-in schemas allow, in words. A message quotes them, so the
/// schemas, which a model reads on every connection, need not: a value that fails costs
/// these words once, in its answer.
fn pattern_in_words(pattern: &str) -> Option<String> {
    match pattern {
        DEPLOYMENT_REF_PATTERN => Some(DEPLOYMENT_REF_RULE.to_owned()),
        DEPLOYMENT_NAME_PATTERN => Some(DEPLOYMENT_NAME_RULE.to_owned()),
        MEMORY_LIMIT_PATTERN => Some(
            "a number followed by M (mebibytes) or G (gibibytes), e.g. \"512M\" or \"1G\""
                .to_owned(),
        ),
        _ => None,
    }
}

/// The memory limit of a deploy: 1 to 6 digits and a unit.
pub(crate) const MEMORY_LIMIT_PATTERN: &str = "^[1-9][0-9]{0,5}[MG]$";

/// `message`, and what the failing value's schema allows when its pattern is known in words
/// (a `-1` given for a deployment reference fails its minimum, not its pattern).
fn with_pattern_words(message: String, schema: &Value, schema_path: &str) -> String {
    let words = parent_schema(schema, schema_path)
        .and_then(|s| s.get("pattern"))
        .and_then(Value::as_str)
        .and_then(pattern_in_words);
    match words {
        Some(what) => format!("{message} (what is allowed: {what})"),
        None => message,
    }
}

/// A missing required `property` of the object at `path`, with the type it should have.
fn missing_property(
    schema: &Value,
    schema_path: &str,
    path: &str,
    property: &Value,
) -> (String, String) {
    let name = property.as_str().unwrap_or_default();
    let parent = parent_schema(schema, schema_path);
    let hint = parent
        .and_then(|p| p.get("properties"))
        .and_then(|p| p.get(name))
        .and_then(type_hint)
        .map(|t| format!(" ({t})"))
        .unwrap_or_default();
    (
        format!("{path}/{}", escape_pointer(name)),
        format!("required property \"{name}\" is missing{hint}"),
    )
}

/// Members of the object at `path` that its schema does not allow, and those it does.
fn unknown_properties(
    schema: &Value,
    schema_path: &str,
    path: String,
    unexpected: &[String],
) -> (String, String) {
    let mut allowed: Vec<String> = parent_schema(schema, schema_path)
        .and_then(|p| p.get("properties"))
        .and_then(Value::as_object)
        .map(|props| props.keys().map(|k| format!("\"{k}\"")).collect())
        .unwrap_or_default();
    allowed.sort();
    let names: Vec<String> = unexpected
        .iter()
        .map(|u| format!("\"{}\"", truncate(&mask_secrets_in_text(u))))
        .collect();
    let noun = if names.len() == 1 {
        "unknown property"
    } else {
        "unknown properties"
    };
    let allowed = if allowed.is_empty() {
        "no properties are allowed here".to_owned()
    } else {
        format!("allowed: {}", allowed.join(", "))
    };
    (
        if path.is_empty() {
            "/".to_owned()
        } else {
            path
        },
        format!("{noun} {}; {allowed}", names.join(", ")),
    )
}

/// A value of the wrong JSON type: the types expected (null left out of a choice) and the one
/// given.
fn type_mismatch(kind: &TypeKind, error: &ValidationError<'_>, shown: &str) -> String {
    let expected = match kind {
        TypeKind::Single(t) => with_article(&t.to_string()),
        TypeKind::Multiple(ts) => {
            let mut names: Vec<String> = ts.iter().map(|t| t.to_string()).collect();
            if names.len() > 1 {
                names.retain(|t| t != "null");
            }
            let names: Vec<String> = names.iter().map(|t| with_article(t)).collect();
            or_list(&names)
        }
    };
    format!(
        "expected {expected}, got {} {shown}",
        with_article(json_type(error.instance()))
    )
}

/// jsonschema's own wording, with the instance re-rendered (truncated, masked).
fn plain(error: &ValidationError<'_>, shown: &str) -> String {
    let raw = error.instance().to_string();
    let text = error.to_string().replace(&raw, shown);
    mask_secrets_in_text(&text).into_owned()
}

/// The values a (sub)schema accepts, when it is an enumeration (`enum`, `const`, or
/// `oneOf`/`anyOf` of those); `None` when it accepts more than listed values.
fn allowed_values(schema: &Value) -> Option<Vec<String>> {
    if let Some(values) = schema.get("enum").and_then(Value::as_array) {
        return Some(
            values
                .iter()
                .filter(|v| !v.is_null())
                .map(|v| truncate(&v.to_string()))
                .collect(),
        );
    }
    if let Some(value) = schema.get("const") {
        return Some(vec![truncate(&value.to_string())]);
    }
    let branches = schema
        .get("oneOf")
        .or_else(|| schema.get("anyOf"))
        .and_then(Value::as_array)?;
    let mut all = Vec::new();
    for branch in branches {
        if branch.get("type").and_then(Value::as_str) == Some("null") {
            continue;
        }
        all.extend(allowed_values(branch)?);
    }
    Some(all)
}

/// What each branch of an `anyOf`/`oneOf` allows, in the words of its `description` (nested
/// choices flattened, `null` left out); `None` unless every branch describes itself.
fn branch_descriptions(schema: &Value) -> Option<Vec<String>> {
    let branches = schema
        .get("anyOf")
        .or_else(|| schema.get("oneOf"))
        .and_then(Value::as_array)?;
    let mut all = Vec::new();
    for branch in branches {
        if branch.get("type").and_then(Value::as_str) == Some("null") {
            continue;
        }
        if branch.get("anyOf").is_some() || branch.get("oneOf").is_some() {
            all.extend(branch_descriptions(branch)?);
        } else {
            all.push(branch.get("description")?.as_str()?.replace('\n', " "));
        }
    }
    (!all.is_empty()).then_some(all)
}

/// "integer or string", from `type` or the branches of `anyOf`/`oneOf`.
fn type_hint(schema: &Value) -> Option<String> {
    let mut types: Vec<String> = Vec::new();
    collect_types(schema, &mut types);
    types.retain(|t| t != "null");
    types.dedup();
    (!types.is_empty()).then(|| or_list(&types))
}

fn collect_types(schema: &Value, out: &mut Vec<String>) {
    match schema.get("type") {
        Some(Value::String(t)) => out.push(t.clone()),
        Some(Value::Array(ts)) => {
            out.extend(ts.iter().filter_map(Value::as_str).map(str::to_owned))
        }
        _ => {}
    }
    for key in ["anyOf", "oneOf"] {
        if let Some(branches) = schema.get(key).and_then(Value::as_array) {
            for branch in branches {
                collect_types(branch, out);
            }
        }
    }
}

/// The schema object that holds the failing keyword (`/properties/a/required` → `/properties/a`).
fn parent_schema<'s>(schema: &'s Value, schema_path: &str) -> Option<&'s Value> {
    schema.pointer(schema_path_without_keyword(schema_path))
}

fn schema_path_without_keyword(schema_path: &str) -> &str {
    schema_path.rfind('/').map_or("", |cut| &schema_path[..cut])
}

/// Whether a JSON path goes through a member whose name marks a secret, or through an
/// `env_vars`-like member.
fn path_is_secret(path: &str) -> bool {
    path.split('/').any(|segment| {
        let lower = segment.to_ascii_lowercase();
        is_secret_name(segment) || lower == "env_vars" || lower == "env"
    })
}

/// An offending value as a message shows it: JSON, cut short, secrets masked.
fn show(value: &Value, secret: bool) -> String {
    if secret && !value.is_null() && !value.is_boolean() {
        return REDACTED.to_owned();
    }
    mask_secrets_in_text(&truncate(&value.to_string())).into_owned()
}

fn truncate(text: &str) -> String {
    if text.chars().count() <= MAX_VALUE_CHARS {
        text.to_owned()
    } else {
        let cut: String = text.chars().take(MAX_VALUE_CHARS).collect();
        format!("{cut}…")
    }
}

/// `a`, `a or b`, `a, b or c`.
fn or_list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} or {last}", rest.join(", ")),
    }
}

fn with_article(type_name: &str) -> String {
    let article = if type_name.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    };
    format!("{article} {type_name}")
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// RFC 6901 escaping of one path segment.
fn escape_pointer(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn validator() -> ArgsValidator {
        ArgsValidator::new(json!({
            "type": "object",
            "additionalProperties": false,
            "required": ["deployment_id"],
            "properties": {
                "deployment_id": {"anyOf": [{"type": "integer"}, {"type": "string"}]},
                "lines": {"type": "integer", "minimum": 10, "maximum": 1000},
                "log_type": {"oneOf": [
                    {"const": "application", "type": "string"},
                    {"enum": ["access", "error", "deployment"], "type": "string"}
                ]},
                "api_token": {"type": "string", "minLength": 40}
            }
        }))
        .unwrap()
    }

    #[test]
    fn every_violation_with_path_and_allowed() {
        let err = validator()
            .check(
                "webops_get_logs",
                &json!({"lines": 5000, "log_type": "foo", "bogus": 1}),
            )
            .unwrap_err();
        let msg = err.message();
        assert!(
            msg.starts_with("invalid arguments for webops_get_logs: "),
            "{msg}"
        );
        assert!(
            msg.contains("/lines: 5000 is greater than the maximum of 1000"),
            "{msg}"
        );
        assert!(
            msg.contains(
                r#"/log_type: "foo" is not one of "application", "access", "error" or "deployment""#
            ),
            "{msg}"
        );
        assert!(
            msg.contains(r#"/deployment_id: required property "deployment_id" is missing (integer or string)"#),
            "{msg}"
        );
        assert!(
            msg.contains(r#"unknown property "bogus"; allowed: "#),
            "{msg}"
        );
        assert!(msg.contains(r#""lines""#), "{msg}");
    }

    #[test]
    fn wrong_type_and_any_of() {
        let err = validator()
            .check("t", &json!({"deployment_id": true, "lines": "ten"}))
            .unwrap_err();
        let msg = err.message();
        assert!(
            msg.contains(r#"/lines: expected an integer, got a string "ten""#),
            "{msg}"
        );
        assert!(
            msg.contains("/deployment_id: true is not valid: expected integer or string"),
            "{msg}"
        );
    }

    #[test]
    fn secret_values_are_not_echoed() {
        let err = validator()
            .check(
                "t",
                &json!({"deployment_id": 1, "api_token": "hunter2-secret"}),
            )
            .unwrap_err();
        assert!(!err.message().contains("hunter2"), "{}", err.message());
        assert!(err.message().contains("/api_token"));
    }

    #[test]
    fn secret_looking_property_names_are_not_echoed() {
        let err = validator()
            .check(
                "t",
                &json!({"deployment_id": 1,
                        "ghp_abcdefghijklmnopqrstuvwxyz0123456789": 1,
                        "password=hunter2hunter2": true}),
            )
            .unwrap_err();
        let msg = err.message();
        assert!(!msg.contains("ghp_abc"), "{msg}");
        assert!(!msg.contains("hunter2"), "{msg}");
        assert!(msg.contains("unknown properties"), "{msg}");
        assert!(msg.contains("\"[redacted token]\""), "{msg}");
        assert!(msg.contains("\"password=<redacted>\""), "{msg}");

        // A secret-looking name inside a nested object is masked in the path too.
        let nested = ArgsValidator::new(json!({
            "type": "object",
            "properties": {"labels": {"type": "object",
                                      "additionalProperties": {"type": "string"}}}
        }))
        .unwrap();
        let err = nested
            .check("t", &json!({"labels": {"AKIAIOSFODNN7EXAMPLE": 5}}))
            .unwrap_err();
        assert!(
            !err.message().contains("AKIAIOSFODNN7EXAMPLE"),
            "{}",
            err.message()
        );
    }

    #[test]
    fn an_excluded_value_says_what_is_excluded() {
        let validator = ArgsValidator::new(json!({
            "type": "object",
            "properties": {
                "app_name": {"type": "string", "not": {
                    "pattern": "^[0-9]+$",
                    "description": "digits only (digits mean an id)"
                }},
                "other": {"type": "string", "not": {"const": "x"}}
            }
        }))
        .unwrap();
        assert!(
            validator
                .check("t", &json!({"app_name": "shop-2048"}))
                .is_ok()
        );
        let err = validator
            .check("t", &json!({"app_name": "2048", "other": "x"}))
            .unwrap_err();
        let msg = err.message();
        assert!(
            msg.contains(
                r#"/app_name: "2048" is not allowed: it must not be digits only (digits mean an id)"#
            ),
            "{msg}"
        );
        // Without a description, jsonschema's own wording.
        assert!(msg.contains("/other: "), "{msg}");
    }

    #[test]
    fn a_choice_whose_branches_describe_themselves_says_what_each_allows() {
        let validator = ArgsValidator::new(json!({
            "type": "object",
            "properties": {
                "deployment_id": {"anyOf": [
                    {"anyOf": [
                        {"type": "integer", "minimum": 1, "description": "an id of at least 1"},
                        {"type": "string", "pattern": "^[a-z]+$", "description": "a name"}
                    ]},
                    {"type": "null"}
                ]},
                "app_name": {"type": "string", "pattern": "^[a-z]+$",
                             "description": "lowercase\nletters only"},
                "bare": {"type": "string", "pattern": "^x$"}
            }
        }))
        .unwrap();
        assert!(validator.check("t", &json!({"deployment_id": 3})).is_ok());
        assert!(
            validator
                .check("t", &json!({"deployment_id": null}))
                .is_ok()
        );
        for bad in [json!(-1), json!(0), json!(" shop")] {
            let err = validator
                .check("t", &json!({"deployment_id": bad}))
                .unwrap_err();
            let expected = format!(
                "/deployment_id: {bad} is not valid; allowed: an id of at least 1; or a name"
            );
            assert!(err.message().contains(&expected), "{}", err.message());
        }
        let err = validator
            .check("t", &json!({"app_name": "Shop", "bare": "y"}))
            .unwrap_err();
        let msg = err.message();
        assert!(
            msg.contains(
                r#"/app_name: "Shop" does not match ^[a-z]+$ (what is allowed: lowercase letters only)"#
            ),
            "{msg}"
        );
        assert!(msg.contains(r#"/bare: "y" does not match ^x$"#), "{msg}");
    }

    #[test]
    fn a_known_pattern_is_named_in_words_whatever_the_value_fails() {
        let validator = ArgsValidator::new(json!({
            "type": "object",
            "properties": {"deployment_id": {
                "type": ["integer", "string"], "minimum": 1, "pattern": DEPLOYMENT_REF_PATTERN
            }}
        }))
        .unwrap();
        for bad in [json!(0), json!(1.5), json!("Shop")] {
            let err = validator
                .check("t", &json!({"deployment_id": bad}))
                .unwrap_err();
            let msg = err.message();
            assert!(
                msg.contains("(what is allowed: a numeric id (an integer of at least 1")
                    && msg.contains(DEPLOYMENT_NAME_RULE),
                "{msg}"
            );
        }
    }

    #[test]
    fn valid_arguments_pass() {
        assert!(
            validator()
                .check("t", &json!({"deployment_id": "shop"}))
                .is_ok()
        );
    }

    #[test]
    fn invalid_schema_is_an_error() {
        assert!(ArgsValidator::new(json!({"type": "bogus"})).is_err());
    }
}
