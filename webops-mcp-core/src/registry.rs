//! The tool registry, built once from the built-in tools plus any custom ones: type erasure
//! of tools, schema generation and compilation at build time (duplicate names, non-object or
//! invalid schemas are build errors), and [`ToolDefinition`] with annotations derived from
//! [`Access`]. Calls go through [`crate::pipeline`].

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use schemars::generate::SchemaSettings;
use schemars::transform::RecursiveTransform;
use schemars::{JsonSchema, Schema};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::Value;
use serde_json::value::RawValue;

use crate::identity::{Identity, Permission};
use crate::plan::{DryRun, Plan};
use crate::redact::mask_secrets_in_text;
use crate::selection::{ToolSelection, UnknownTools};
use crate::tool::{Access, Tool, ToolContext, ToolError, ToolOutput, structured_json};
use crate::validation::ArgsValidator;

/// The longest tool name MCP allows.
pub(crate) const MAX_NAME_LEN: usize = 128;

/// Why a registry (or a server) could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// Two tools share a name.
    #[error("two tools are named {name}; tool names must be unique")]
    DuplicateTool {
        /// The name.
        name: String,
    },
    /// A tool name MCP clients would reject.
    #[error("tool name {name:?} is invalid: {reason}")]
    InvalidToolName {
        /// The name.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A tool without a description (models choose tools by their description).
    #[error("tool {tool} has an empty description; models choose tools by their description")]
    EmptyDescription {
        /// The tool.
        tool: String,
    },
    /// An input or output schema that is not a valid JSON Schema with an object root.
    #[error("the {which} schema of tool {tool} is invalid: {reason}")]
    InvalidSchema {
        /// The tool.
        tool: String,
        /// `input` or `output`.
        which: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The WebOps client could not be built from its configuration.
    #[error("invalid WebOps client configuration: {0}")]
    Client(#[source] webops_client::Error),
    /// A setting is out of range.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The tool selection names a tool the server does not have.
    #[error("invalid tool selection: {0}")]
    UnknownTools(#[from] UnknownTools),
}

/// MCP tool annotations, derived from the tool's [`Access`], never written by hand.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct ToolAnnotations {
    /// The tool does not change the platform.
    pub read_only_hint: bool,
    /// The tool may lose something for good.
    pub destructive_hint: bool,
    /// Repeating a call with the same arguments has no further effect.
    pub idempotent_hint: bool,
    /// The tool acts on an external system (always true: the WebOps platform).
    pub open_world_hint: bool,
}

impl ToolAnnotations {
    /// The annotations of a tool with `access`.
    pub fn for_access(access: Access) -> Self {
        let (read_only_hint, destructive_hint, idempotent_hint) = match access {
            Access::Read => (true, false, true),
            Access::Write => (false, false, false),
            Access::Destructive => (false, true, false),
        };
        ToolAnnotations {
            read_only_hint,
            destructive_hint,
            idempotent_hint,
            open_world_hint: true,
        }
    }
}

/// What a client sees of a tool (`tools/list`), plus its access level and permissions.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct ToolDefinition {
    /// Unique name, e.g. `webops_get_status`.
    pub name: &'static str,
    /// Short human title.
    pub title: &'static str,
    /// What the tool does, for a model deciding whether to call it.
    pub description: &'static str,
    /// JSON Schema (2020-12) of the arguments; the root is `"type": "object"`.
    pub input_schema: Value,
    /// JSON Schema (2020-12) of `structuredContent`; the root is `"type": "object"`.
    pub output_schema: Value,
    /// Hints derived from `access`.
    pub annotations: ToolAnnotations,
    /// What the tool does to the platform.
    pub access: Access,
    /// Every permission a caller must hold.
    #[serde(serialize_with = "serialize_permissions")]
    pub permissions: &'static [Permission],
}

fn serialize_permissions<S: Serializer>(
    permissions: &&'static [Permission],
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.collect_seq(permissions.iter().map(|p| p.as_str()))
}

impl ToolDefinition {
    /// Whether `identity` may call this tool (holds every permission; in read-only mode only
    /// `Read` tools).
    pub fn allows(&self, identity: &Identity, read_only: bool) -> bool {
        (!read_only || self.access == Access::Read)
            && identity.permissions.contains_all(self.permissions)
    }
}

/// A [`Tool`] with its types erased, so tools of different types live in one registry.
#[async_trait]
pub(crate) trait ErasedTool: Send + Sync {
    /// The tool's name.
    fn name(&self) -> &'static str;
    /// The definition, with schemas generated from the typed arguments and output.
    fn definition(&self) -> Result<ToolDefinition, BuildError>;
    /// Deserializes `raw_args`, calls the tool, and returns its text and structured output.
    async fn call(
        &self,
        ctx: &ToolContext,
        raw_args: &Value,
    ) -> Result<(String, Box<RawValue>), ToolError>;
    /// Deserializes `raw_args` and describes the call without making it.
    async fn plan(&self, ctx: &ToolContext, raw_args: &Value) -> Result<Plan, ToolError>;
}

#[async_trait]
impl<T: Tool> ErasedTool for T {
    fn name(&self) -> &'static str {
        T::NAME
    }

    fn definition(&self) -> Result<ToolDefinition, BuildError> {
        let mut input_schema = object_schema::<T::Args>(T::NAME, "input")?;
        let mut output_schema = object_schema::<T::Output>(T::NAME, "output")?;
        if T::ACCESS != Access::Read {
            add_dry_run(&mut input_schema, &mut output_schema)?;
        }
        share_repeated_subschemas(&mut output_schema);
        Ok(ToolDefinition {
            name: T::NAME,
            title: T::TITLE,
            description: T::DESCRIPTION,
            input_schema,
            output_schema,
            annotations: ToolAnnotations::for_access(T::ACCESS),
            access: T::ACCESS,
            permissions: T::PERMISSIONS,
        })
    }

    async fn call(
        &self,
        ctx: &ToolContext,
        raw_args: &Value,
    ) -> Result<(String, Box<RawValue>), ToolError> {
        let args = typed_args::<T>(raw_args)?;
        let output = <T as Tool>::call(self, ctx, args).await?;
        let structured = structured_json(T::NAME, &output)?;
        Ok((ToolOutput::to_text(&output), structured))
    }

    async fn plan(&self, ctx: &ToolContext, raw_args: &Value) -> Result<Plan, ToolError> {
        let args = typed_args::<T>(raw_args)?;
        <T as Tool>::plan(self, ctx, &args).await
    }
}

fn typed_args<T: Tool>(raw_args: &Value) -> Result<T::Args, ToolError> {
    T::Args::deserialize(raw_args).map_err(|e| {
        ToolError::invalid(format!(
            "invalid arguments for {}: {}",
            T::NAME,
            mask_secrets_in_text(&e.to_string())
        ))
    })
}

/// The argument every Write and Destructive tool takes, and the output it then gives.
pub(crate) const DRY_RUN: &str = "dry_run";

/// Adds `dry_run` to a Write or Destructive tool's input schema, and to its output schema
/// the alternative a dry run answers (`{"dry_run": <plan>}`): the tool's own `required`
/// moves into an `anyOf` next to `["dry_run"]`.
fn add_dry_run(input: &mut Value, output: &mut Value) -> Result<(), BuildError> {
    let dry_run = serde_json::json!({
        "type": "boolean",
        "default": false,
        "description": "Only describe what the call would do; send nothing.",
    });
    let mut plan = object_schema::<DryRun>(DRY_RUN, "output")?;
    let plan = plan["properties"][DRY_RUN].take();
    let required = output
        .as_object_mut()
        .and_then(|root| root.remove("required"))
        .unwrap_or_else(|| Value::Array(Vec::new()));
    let (Some(inputs), Some(outputs)) = (properties(input), properties(output)) else {
        return Err(BuildError::Config(
            "a tool schema must be an object".to_owned(),
        ));
    };
    inputs.insert(DRY_RUN.to_owned(), dry_run);
    outputs.insert(DRY_RUN.to_owned(), plan);
    output["anyOf"] = serde_json::json!([{ "required": required }, { "required": [DRY_RUN] }]);
    Ok(())
}

/// The `properties` of an object schema, made when missing.
fn properties(schema: &mut Value) -> Option<&mut serde_json::Map<String, Value>> {
    schema
        .as_object_mut()?
        .entry("properties")
        .or_insert_with(|| Value::Object(serde_json::Map::new()))
        .as_object_mut()
}

/// The formats JSON Schema 2020-12 defines. schemars also writes its own (`uint32`, `double`,
/// ...), which clients do not know and some warn about; the `type` and bounds already say it.
const STANDARD_FORMATS: &[&str] = &[
    "date-time",
    "date",
    "time",
    "duration",
    "email",
    "idn-email",
    "hostname",
    "idn-hostname",
    "ipv4",
    "ipv6",
    "uri",
    "uri-reference",
    "iri",
    "iri-reference",
    "uuid",
    "uri-template",
    "json-pointer",
    "relative-json-pointer",
    "regex",
];

/// Drops a `format` that JSON Schema does not define.
fn keep_standard_formats(schema: &mut Schema) {
    if let Some(Value::String(format)) = schema.get("format")
        && !STANDARD_FORMATS.contains(&format.as_str())
    {
        schema.remove("format");
    }
}

/// The JSON Schema of `S`: subschemas inlined, input schemas for what deserializes and
/// output schemas for what serializes, only standard formats, root `title`/`description`
/// (type-name noise) and `$schema` removed: MCP's default dialect is JSON Schema 2020-12,
/// the one schemars writes, and every byte of `tools/list` is read by a model.
fn object_schema<S: JsonSchema>(tool: &str, which: &'static str) -> Result<Value, BuildError> {
    let settings = SchemaSettings::draft2020_12().with(|s| s.inline_subschemas = true);
    let settings = settings.with_transform(RecursiveTransform(keep_standard_formats));
    let settings = if which == "output" {
        settings.for_serialize()
    } else {
        settings.for_deserialize()
    };
    let mut schema = settings
        .into_generator()
        .into_root_schema_for::<S>()
        .to_value();
    let invalid = |reason: &str| BuildError::InvalidSchema {
        tool: tool.to_owned(),
        which,
        reason: reason.to_owned(),
    };
    let Value::Object(root) = &mut schema else {
        return Err(invalid(
            "the root must be a JSON object with \"type\": \"object\"",
        ));
    };
    if root.get("type").and_then(Value::as_str) != Some("object") {
        return Err(invalid(
            "the root must have \"type\": \"object\" (use a struct with named fields)",
        ));
    }
    root.remove("title");
    root.remove("description");
    root.remove("$schema");
    remove_null_defaults(root);
    Ok(schema)
}

/// Removes `"default": null` from the top-level properties: an optional argument left out
/// is null anyway, and its type already allows null.
fn remove_null_defaults(root: &mut serde_json::Map<String, Value>) {
    let Some(Value::Object(properties)) = root.get_mut("properties") else {
        return;
    };
    for property in properties.values_mut() {
        if let Value::Object(property) = property
            && property.get("default") == Some(&Value::Null)
        {
            property.remove("default");
        }
    }
}

/// The shortest subschema (as JSON) worth a `$defs` entry: each place that has it then costs
/// a `{"$ref":"#/$defs/NAME"}` of some 25 bytes instead.
const MIN_SHARED_LEN: usize = 80;

/// Shares the object subschemas that an output schema repeats: each becomes one entry of
/// the root's `$defs`, and every place that had it a `$ref` to it that keeps the place's own
/// `description`. Then an object that another extends (a flattened struct: all its
/// properties and more) is shared the same way, the extension keeping only what it adds
/// next to its `$ref`. An entry is named by the subschema's `title` (`#[schemars(title =
/// "...")]` on the type), else by the property where it first occurs; titles only name, and
/// are removed afterwards. Input schemas stay inline: validation messages point into them.
fn share_repeated_subschemas(schema: &mut Value) {
    let mut defs = serde_json::Map::new();
    while let Some((name, shared)) = most_repeated(schema, &defs) {
        let name = unique_name(&name, &defs);
        let reference = format!("#/$defs/{name}");
        replace_shared(schema, &shared, &reference);
        for def in defs.values_mut() {
            replace_shared(def, &shared, &reference);
        }
        defs.insert(name, shared);
    }
    while let Some((name, base, extension)) = best_extension(schema, &defs) {
        let name = unique_name(&name, &defs);
        let reference = format!("#/$defs/{name}");
        replace_extension(schema, &extension, &base, &reference);
        replace_shared(schema, &base, &reference);
        defs.insert(name, base);
    }
    for def in defs.values_mut() {
        remove_titles(def);
    }
    remove_titles(schema);
    if let (Value::Object(root), false) = (&mut *schema, defs.is_empty()) {
        root.insert("$defs".to_owned(), Value::Object(defs));
    }
}

/// A subschema without what only belongs to the place it is used (`description`) or only
/// names it (`title`): two places with the same key can share one definition.
fn shareable(schema: &Value) -> Option<Value> {
    let object = schema.as_object()?;
    if !object.contains_key("properties") {
        return None;
    }
    let mut key = object.clone();
    key.remove("description");
    key.remove("title");
    Some(Value::Object(key))
}

/// The repeated object subschema (of `schema` and the definitions so far) that saves the
/// most bytes when shared, with the name it gets.
fn most_repeated(schema: &Value, defs: &serde_json::Map<String, Value>) -> Option<(String, Value)> {
    let mut seen: HashMap<String, (usize, String, Value)> = HashMap::new();
    let mut count = |name: &str, sub: &Value| {
        if let Some(key) = shareable(sub) {
            let text = key.to_string();
            let title = sub.get("title").and_then(Value::as_str).unwrap_or(name);
            let entry = seen
                .entry(text)
                .or_insert_with(|| (0, title.to_owned(), key));
            entry.0 += 1;
        }
    };
    for_each_subschema(schema, "", &mut count);
    for def in defs.values() {
        for_each_subschema(def, "", &mut count);
    }
    seen.into_iter()
        .filter(|(text, (n, _, _))| *n >= 2 && text.len() >= MIN_SHARED_LEN)
        .max_by_key(|(text, (n, name, _))| ((n - 1) * text.len(), std::cmp::Reverse(name.clone())))
        .map(|(_, (_, name, key))| (name, key))
}

/// The object subschema that another one extends (it has all its properties, the same, and
/// requires all it requires) and saves the most bytes when the other refers to it instead,
/// with its name: `(name, base, extension)`, both as [`shareable`] gives them.
fn best_extension(
    schema: &Value,
    defs: &serde_json::Map<String, Value>,
) -> Option<(String, Value, Value)> {
    let mut candidates: Vec<(String, Value)> = Vec::new();
    for_each_subschema(schema, "", &mut |name: &str, sub: &Value| {
        if let Some(key) = shareable(sub)
            && !candidates.iter().any(|(_, seen)| *seen == key)
        {
            let name = sub.get("title").and_then(Value::as_str).unwrap_or(name);
            candidates.push((name.to_owned(), key));
        }
    });
    let mut best: Option<(usize, String, Value, Value)> = None;
    for (name, base) in &candidates {
        let saved = base["properties"].to_string().len();
        if saved < MIN_SHARED_LEN || defs.values().any(|d| d == base) {
            continue;
        }
        for (_, extension) in candidates.iter().filter(|(_, e)| e != base) {
            if extends(extension, base) && best.as_ref().is_none_or(|(s, ..)| saved > *s) {
                best = Some((saved, name.clone(), base.clone(), extension.clone()));
            }
        }
    }
    best.map(|(_, name, base, extension)| (name, base, extension))
}

/// Whether `extension` has every property of `base` (the same subschemas), requires all
/// that `base` requires, and has `base`'s other keywords (its `type`) too.
fn extends(extension: &Value, base: &Value) -> bool {
    let (Some(extension), Some(base)) = (extension.as_object(), base.as_object()) else {
        return false;
    };
    let has = |keyword: &str, check: &dyn Fn(&Value, &Value) -> bool| match base.get(keyword) {
        None => true,
        Some(b) => extension.get(keyword).is_some_and(|e| check(e, b)),
    };
    let properties_included = |e: &Value, b: &Value| {
        b.as_object()
            .is_some_and(|b| b.iter().all(|(name, sub)| e.get(name) == Some(sub)))
    };
    let required_included = |e: &Value, b: &Value| {
        let e = e.as_array().map(Vec::as_slice).unwrap_or_default();
        b.as_array()
            .is_some_and(|b| b.iter().all(|r| e.contains(r)))
    };
    base.keys().all(|keyword| match keyword.as_str() {
        "properties" => has(keyword, &properties_included),
        "required" => has(keyword, &required_included),
        _ => extension.get(keyword) == base.get(keyword),
    }) && base.get("properties") != extension.get("properties")
}

/// Replaces every subschema below `schema` that is `extension` (but for `description` and
/// `title`) with a `$ref` to `base` plus what `extension` adds: its other properties and
/// the rest of its `required`.
fn replace_extension(schema: &mut Value, extension: &Value, base: &Value, reference: &str) {
    for sub in subschemas_mut(schema) {
        if shareable(sub).as_ref() != Some(extension) {
            replace_extension(sub, extension, base, reference);
            continue;
        }
        let Some(place) = sub.as_object_mut() else {
            continue;
        };
        let base_properties = base["properties"].as_object().cloned().unwrap_or_default();
        if let Some(Value::Object(properties)) = place.get_mut("properties") {
            properties.retain(|name, _| !base_properties.contains_key(name));
        }
        if let Some(Value::Array(required)) = place.get_mut("required") {
            let base_required = base["required"].as_array().cloned().unwrap_or_default();
            required.retain(|name| !base_required.contains(name));
            if required.is_empty() {
                place.remove("required");
            }
        }
        for keyword in base.as_object().into_iter().flat_map(|b| b.keys()) {
            if !matches!(keyword.as_str(), "properties" | "required") {
                place.remove(keyword);
            }
        }
        place.remove("title");
        place.insert("$ref".to_owned(), Value::String(reference.to_owned()));
    }
}

/// The subschemas right below `schema`: in `properties`, `items`, `additionalProperties` and
/// `anyOf`.
fn subschemas_mut(schema: &mut Value) -> Vec<&mut Value> {
    let mut subschemas = Vec::new();
    for (keyword, value) in schema.as_object_mut().into_iter().flatten() {
        match (keyword.as_str(), value) {
            ("properties", Value::Object(properties)) => subschemas.extend(properties.values_mut()),
            ("items" | "additionalProperties", sub @ Value::Object(_)) => subschemas.push(sub),
            ("anyOf", Value::Array(branches)) => subschemas.extend(branches.iter_mut()),
            _ => {}
        }
    }
    subschemas
}

/// Calls `visit` with every subschema below `schema` (in `properties`, `items`,
/// `additionalProperties` and `anyOf`) and the name of the property it belongs to.
fn for_each_subschema(schema: &Value, name: &str, visit: &mut impl FnMut(&str, &Value)) {
    if let Some(properties) = schema.get("properties").and_then(Value::as_object) {
        for (property, sub) in properties {
            visit(property, sub);
            for_each_subschema(sub, property, visit);
        }
    }
    for keyword in ["items", "additionalProperties"] {
        if let Some(sub) = schema.get(keyword).filter(|s| s.is_object()) {
            visit(name, sub);
            for_each_subschema(sub, name, visit);
        }
    }
    for sub in schema
        .get("anyOf")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        visit(name, sub);
        for_each_subschema(sub, name, visit);
    }
}

/// Replaces every subschema below `schema` that is `shared` (but for its `description`
/// and `title`) with a `$ref` to `reference`, keeping its `description`.
fn replace_shared(schema: &mut Value, shared: &Value, reference: &str) {
    for sub in subschemas_mut(schema) {
        if shareable(sub).as_ref() == Some(shared) {
            let mut place = serde_json::Map::new();
            place.insert("$ref".to_owned(), Value::String(reference.to_owned()));
            if let Some(description) = sub.get("description") {
                place.insert("description".to_owned(), description.clone());
            }
            *sub = Value::Object(place);
        } else {
            replace_shared(sub, shared, reference);
        }
    }
}

/// `name`, or `name_2`, `name_3`, ... when `defs` has it already.
fn unique_name(name: &str, defs: &serde_json::Map<String, Value>) -> String {
    let name = if name.is_empty() { "shared" } else { name };
    let mut candidate = name.to_owned();
    let mut n = 2;
    while defs.contains_key(&candidate) {
        candidate = format!("{name}_{n}");
        n += 1;
    }
    candidate
}

/// Removes `title` from every subschema of `schema` (not from a property named `title`).
fn remove_titles(schema: &mut Value) {
    let Some(object) = schema.as_object_mut() else {
        return;
    };
    object.retain(|keyword, value| keyword != "title" || !value.is_string());
    if let Some(Value::Object(defs)) = object.get_mut("$defs") {
        defs.values_mut().for_each(remove_titles);
    }
    subschemas_mut(schema).into_iter().for_each(remove_titles);
}

/// Builds the set of tools a server offers.
#[derive(Default)]
pub struct RegistryBuilder {
    tools: Vec<Arc<dyn ErasedTool>>,
}

impl RegistryBuilder {
    /// An empty builder (no tools).
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the built-in tools of the design brief.
    pub fn with_builtin_tools(self) -> Self {
        crate::tools::register_builtin(self)
    }

    /// Names of the tools added so far, in order.
    pub fn names(&self) -> Vec<&'static str> {
        self.tools.iter().map(|t| t.name()).collect()
    }

    /// Adds a tool.
    pub fn tool<T: Tool>(mut self, tool: T) -> Self {
        self.tools.push(Arc::new(tool));
        self
    }

    /// Keeps only the tools `selection` selects (all of them when it names nothing). A tool
    /// named one by one that is not among the tools added so far is an error naming every
    /// valid tool and toolset.
    pub fn select(mut self, selection: &ToolSelection) -> Result<Self, UnknownTools> {
        selection.check(self.names())?;
        self.tools.retain(|tool| selection.selects(tool.name()));
        Ok(self)
    }

    /// Adds every tool of `other` after these.
    pub(crate) fn append(mut self, other: RegistryBuilder) -> Self {
        self.tools.extend(other.tools);
        self
    }

    /// Generates and checks every definition and compiles every schema. A duplicate name,
    /// an invalid name, an empty description or an invalid schema is an error.
    pub fn build(self) -> Result<Registry, BuildError> {
        let mut entries = Vec::with_capacity(self.tools.len());
        let mut index = HashMap::with_capacity(self.tools.len());
        for tool in self.tools {
            let definition = tool.definition()?;
            check_name(definition.name)?;
            if definition.description.trim().is_empty() {
                return Err(BuildError::EmptyDescription {
                    tool: definition.name.to_owned(),
                });
            }
            if index.insert(definition.name, entries.len()).is_some() {
                return Err(BuildError::DuplicateTool {
                    name: definition.name.to_owned(),
                });
            }
            let compile = |schema: &Value, which| {
                ArgsValidator::new(schema.clone()).map_err(|reason| BuildError::InvalidSchema {
                    tool: definition.name.to_owned(),
                    which,
                    reason,
                })
            };
            let input = compile(&definition.input_schema, "input")?;
            let output = compile(&definition.output_schema, "output")?;
            entries.push(Entry {
                definition,
                tool,
                input,
                output,
            });
        }
        Ok(Registry { entries, index })
    }
}

/// MCP tool names: 1 to 128 characters of `A-Z a-z 0-9 _ - .`.
fn check_name(name: &str) -> Result<(), BuildError> {
    let invalid = |reason: &str| BuildError::InvalidToolName {
        name: name.to_owned(),
        reason: reason.to_owned(),
    };
    if name.is_empty() || name.len() > MAX_NAME_LEN {
        return Err(invalid("it must be 1 to 128 characters long"));
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
    {
        return Err(invalid("only A-Z, a-z, 0-9, '_', '-' and '.' are allowed"));
    }
    Ok(())
}

pub(crate) struct Entry {
    pub(crate) definition: ToolDefinition,
    pub(crate) tool: Arc<dyn ErasedTool>,
    pub(crate) input: ArgsValidator,
    #[cfg_attr(not(debug_assertions), allow(dead_code))]
    pub(crate) output: ArgsValidator,
}

/// An immutable set of tools with their definitions and compiled schemas.
pub struct Registry {
    entries: Vec<Entry>,
    index: HashMap<&'static str, usize>,
}

impl Registry {
    /// Every tool's definition, in registration order.
    pub fn definitions(&self) -> impl Iterator<Item = &ToolDefinition> {
        self.entries.iter().map(|e| &e.definition)
    }

    /// The definition of the tool named `name`.
    pub fn definition(&self, name: &str) -> Option<&ToolDefinition> {
        self.entry(name).map(|e| &e.definition)
    }

    /// Only the tools `identity` may call (every permission held; in read-only mode only
    /// `Read` tools), in registration order.
    pub fn definitions_for(&self, identity: &Identity, read_only: bool) -> Vec<&ToolDefinition> {
        self.definitions()
            .filter(|d| d.allows(identity, read_only))
            .collect()
    }

    /// Tool names, in registration order.
    pub fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.entries.iter().map(|e| e.definition.name)
    }

    /// How many tools there are.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub(crate) fn entry(&self, name: &str) -> Option<&Entry> {
        self.index.get(name).map(|&i| &self.entries[i])
    }
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.names()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn stat() -> Value {
        json!({"type": ["object", "null"], "title": "stat",
               "properties": {"min": {"type": "number"}, "avg": {"type": "number"},
                              "max": {"type": "number"}},
               "required": ["min", "avg", "max"]})
    }

    #[test]
    fn a_repeated_subschema_is_defined_once_and_each_place_keeps_its_description() {
        let mut cpu = stat();
        cpu["description"] = json!("CPU percent.");
        let mut schema = json!({
            "type": "object",
            "properties": {"cpu": cpu, "memory": stat(), "name": {"type": "string"}},
            "required": ["cpu", "memory", "name"]
        });
        let original = schema.clone();
        share_repeated_subschemas(&mut schema);
        let mut def = stat();
        def.as_object_mut().unwrap().remove("title");
        assert_eq!(schema["$defs"], json!({ "stat": def }));
        assert_eq!(
            schema["properties"]["cpu"],
            json!({"$ref": "#/$defs/stat", "description": "CPU percent."})
        );
        assert_eq!(
            schema["properties"]["memory"],
            json!({"$ref": "#/$defs/stat"})
        );
        assert_eq!(schema["properties"]["name"], original["properties"]["name"]);

        // The same instances are valid, and the same are not.
        let stats = json!({"min": 1.0, "avg": 2.0, "max": 3.0});
        assert_same_validity(
            &schema,
            &original,
            [
                json!({"cpu": stats, "memory": null, "name": "x"}),
                json!({"cpu": {"min": 1.0}, "memory": null, "name": "x"}),
                json!({"cpu": stats, "memory": "high", "name": "x"}),
            ],
        );
    }

    /// Asserts that `shared` and `inline` accept and refuse the same `instances`.
    fn assert_same_validity(
        shared: &Value,
        inline: &Value,
        instances: impl IntoIterator<Item = Value>,
    ) {
        let shared = jsonschema::validator_for(shared).unwrap();
        let inline = jsonschema::validator_for(inline).unwrap();
        for instance in instances {
            assert_eq!(
                shared.is_valid(&instance),
                inline.is_valid(&instance),
                "{instance}"
            );
        }
    }

    #[test]
    fn an_object_that_extends_another_refers_to_it_and_adds_the_rest() {
        let line = json!({"type": "object", "title": "line",
            "properties": {"id": {"type": "integer"}, "name": {"type": "string"},
                           "status": {"type": "string"}, "url": {"type": ["string", "null"]}},
            "required": ["id", "name", "status", "url"]});
        let mut detail = line.clone();
        detail["properties"]["domain"] = json!({"type": "string"});
        detail["required"] = json!(["id", "name", "status", "url", "domain"]);
        detail.as_object_mut().unwrap().remove("title");
        let mut schema = json!({"type": "object", "properties": {
            "detail": detail, "lines": {"type": "array", "items": line}}});
        let original = schema.clone();
        share_repeated_subschemas(&mut schema);
        assert_eq!(
            schema["properties"]["lines"]["items"],
            json!({"$ref": "#/$defs/line"})
        );
        assert_eq!(
            schema["properties"]["detail"],
            json!({"$ref": "#/$defs/line", "properties": {"domain": {"type": "string"}},
                   "required": ["domain"]})
        );
        let good = json!({"id": 1, "name": "a", "status": "running", "url": null});
        let mut full = good.clone();
        full["domain"] = json!("a.example");
        assert_same_validity(
            &schema,
            &original,
            [
                json!({"detail": full, "lines": [good]}),
                json!({"detail": good, "lines": []}),
                json!({"detail": full, "lines": [{"id": "1"}]}),
                json!({"detail": {"domain": 5}, "lines": []}),
            ],
        );
    }

    #[test]
    fn a_subschema_used_once_or_too_small_to_share_stays_inline() {
        let mut schema = json!({
            "type": "object",
            "properties": {
                "cpu": stat(),
                "a": {"type": "object", "properties": {"x": {"type": "integer"}}},
                "b": {"type": "object", "properties": {"x": {"type": "integer"}}}
            }
        });
        share_repeated_subschemas(&mut schema);
        assert!(schema.get("$defs").is_none(), "{schema}");
        assert!(
            schema["properties"]["cpu"].get("title").is_none(),
            "titles only name"
        );
    }
}
