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

use crate::identity::{Identity, Permission};
use crate::plan::{DryRun, Plan};
use crate::redact::mask_secrets_in_text;
use crate::selection::{ToolSelection, UnknownTools};
use crate::tool::{Access, Tool, ToolContext, ToolError, ToolErrorKind, ToolOutput};
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
    async fn call(&self, ctx: &ToolContext, raw_args: &Value)
    -> Result<(String, Value), ToolError>;
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
    ) -> Result<(String, Value), ToolError> {
        let args = typed_args::<T>(raw_args)?;
        let output = <T as Tool>::call(self, ctx, args).await?;
        let structured = serde_json::to_value(&output).map_err(|e| {
            ToolError::new(
                ToolErrorKind::Internal,
                format!("{} produced output that cannot be serialized: {e}", T::NAME),
            )
        })?;
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
        "description": "Only describe the call (the requests it would send to WebOps, what \
            would change, the deployment it would hit) and send nothing. Needs the same \
            permission as the call.",
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
/// (type-name noise) removed.
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
    Ok(schema)
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
