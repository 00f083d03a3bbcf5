//! Human confirmation of dangerous calls: a model cannot forge it.
//!
//! The policy ([`ConfirmationConfig`]) says which calls ask first: deletes
//! (`destructive = "elicit"`) and, by default, writes that change or interrupt a production
//! deployment (`write = "production"`). Such a call shows the person the [`Plan`] (what it
//! would do and to which deployment) and asks them to type the deployment's name:
//!
//! - in a 2025-era session whose client declared elicitation, with `elicitation/create`
//!   while the call waits ([`Asker::Session`]);
//! - in the stateless 2026-07-28 era, with an input-required result whose `requestState` is
//!   sealed ([`RequestStateCodec`], HMAC with the configured keyring, a TTL) and bound to
//!   the caller, the tool, its arguments and the digest of the plan shown; the retry that
//!   carries the answer is accepted once (a [`NonceStore`]) and only while the deployment is
//!   unchanged ([`Asker::Stateless`]);
//! - a client that cannot ask gets the `fallback`: `deny` (the default over HTTP) or
//!   `confirm_name` (the default over stdio, whose client shows every call to its person:
//!   the tool's own checks, such as the typed `confirm_name` of a delete, are the
//!   confirmation).
//!
//! Whatever is refused sends nothing to WebOps and says why ([`RefusalReason`]).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use rmcp::model::{RequestStateCodec, RequestStateError, SealOptions};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest as _, Sha256};

use crate::identity::{AuthMethod, Identity};
use crate::nonce::{MemoryNonceStore, NonceStore};
use crate::plan::Plan;
use crate::tool::{Access, RefusalReason, ToolError, ToolErrorKind};

/// The longest a confirmation may stay open.
pub const MAX_STATE_TTL: Duration = Duration::from_secs(600);

/// What a Destructive call needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum DestructivePolicy {
    /// Ask the person (the default).
    #[default]
    Elicit,
    /// Only the tool's own checks (a delete's typed `confirm_name`).
    None,
}

/// Which Write calls ask the person first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum WritePolicy {
    /// None.
    None,
    /// Those that change or interrupt a production deployment: deploying to, stopping,
    /// restarting or scaling down one (the default).
    #[default]
    Production,
    /// All.
    All,
}

/// What happens when the client cannot ask the person.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Fallback {
    /// Refuse the call (the default over HTTP).
    Deny,
    /// Run it with the tool's own checks (the default over stdio).
    ConfirmName,
}

/// The confirmation policy and the keys that seal 2026-07-28 confirmation state.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConfirmationConfig {
    /// What a Destructive call needs.
    pub destructive: DestructivePolicy,
    /// Which Write calls ask first.
    pub write: WritePolicy,
    /// When the client cannot ask; `None` means `deny` over HTTP, `confirm_name` over stdio.
    pub fallback: Option<Fallback>,
    /// `(key id, secret)` pairs, each secret at least 32 bytes; the first seals, all open.
    /// Give every replica the same keys. Empty: a random key for this process only.
    pub state_keys: Vec<(String, Vec<u8>)>,
    /// How long a person has to answer (at most [`MAX_STATE_TTL`]). Default 5 minutes.
    pub state_ttl: Duration,
}

impl Default for ConfirmationConfig {
    fn default() -> Self {
        ConfirmationConfig {
            destructive: DestructivePolicy::Elicit,
            write: WritePolicy::Production,
            fallback: None,
            state_keys: Vec::new(),
            state_ttl: Duration::from_secs(300),
        }
    }
}

impl fmt::Debug for ConfirmationConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let key_ids: Vec<&str> = self.state_keys.iter().map(|(id, _)| id.as_str()).collect();
        f.debug_struct("ConfirmationConfig")
            .field("destructive", &self.destructive)
            .field("write", &self.write)
            .field("fallback", &self.fallback)
            .field("state_key_ids", &key_ids)
            .field("state_ttl", &self.state_ttl)
            .finish()
    }
}

impl ConfirmationConfig {
    /// Sets [`ConfirmationConfig::destructive`].
    pub fn destructive(mut self, policy: DestructivePolicy) -> Self {
        self.destructive = policy;
        self
    }

    /// Sets [`ConfirmationConfig::write`].
    pub fn write(mut self, policy: WritePolicy) -> Self {
        self.write = policy;
        self
    }

    /// Sets [`ConfirmationConfig::fallback`].
    pub fn fallback(mut self, fallback: Fallback) -> Self {
        self.fallback = Some(fallback);
        self
    }

    /// Sets [`ConfirmationConfig::state_keys`].
    pub fn state_keys(mut self, keys: Vec<(String, Vec<u8>)>) -> Self {
        self.state_keys = keys;
        self
    }

    /// Sets [`ConfirmationConfig::state_ttl`].
    pub fn state_ttl(mut self, ttl: Duration) -> Self {
        self.state_ttl = ttl;
        self
    }

    /// Checks the values and builds the codec; the message names the offending setting.
    fn codec(&self) -> Result<RequestStateCodec, String> {
        if self.state_ttl.is_zero() || self.state_ttl > MAX_STATE_TTL {
            return Err(format!(
                "confirmations.state_ttl_secs must be between 1 and {}",
                MAX_STATE_TTL.as_secs()
            ));
        }
        let keys = if self.state_keys.is_empty() {
            vec![("ephemeral".to_owned(), random_key())]
        } else {
            self.state_keys.clone()
        };
        let active = keys[0].0.clone();
        RequestStateCodec::new_with_keyring(active, keys)
            .map_err(|e| format!("confirmations.state_keys: {e}"))
    }
}

fn random_key() -> Vec<u8> {
    // Two v4 UUIDs: 244 random bits from rand's thread-local generator (uuid's `fast-rng`),
    // a cryptographically secure ChaCha stream seeded from the operating system.
    let mut key = uuid::Uuid::new_v4().as_bytes().to_vec();
    key.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
    key
}

/// How this call's client can reach its person.
pub(crate) enum Asker {
    /// It cannot.
    None,
    /// A 2025-era session whose client declared elicitation: ask now and wait.
    Session(Arc<dyn Elicitor>),
    /// A 2026-07-28 request whose client declared elicitation: the first round answers
    /// input-required; the retry brings back the state and the answers.
    Stateless {
        /// The echoed `requestState`.
        state: Option<String>,
        /// The echoed `inputResponses`.
        responses: Option<BTreeMap<String, Value>>,
    },
}

impl Asker {
    /// Whether the person is shown the plan in this round (not on the retry that brings
    /// back their answer).
    pub(crate) fn asks_now(&self) -> bool {
        matches!(
            self,
            Asker::Session(_) | Asker::Stateless { state: None, .. }
        )
    }
}

/// Asks a person through the client (`elicitation/create`).
#[async_trait]
pub(crate) trait Elicitor: Send + Sync {
    /// The person's answer, or why there is none.
    async fn elicit(&self, question: &Question) -> Result<Answer, String>;
}

/// What a person is asked.
#[derive(Debug, Clone)]
pub(crate) struct Question {
    /// What they read: the plan.
    pub(crate) message: String,
    /// The name they must type.
    pub(crate) name: String,
}

impl Question {
    /// The key of the question in an input-required result's `inputRequests`.
    pub(crate) const KEY: &'static str = "confirm";
    /// The field the person types the name into.
    pub(crate) const FIELD: &'static str = "name";

    fn for_plan(plan: &Plan, identity: &Identity) -> Self {
        Question {
            message: format!(
                "{}\n\nAsked by {} ({}) through webops-mcp. Nothing happens unless you type \
                 the deployment's name exactly.",
                plan.to_text(),
                identity.user_id,
                identity.auth_method.as_str()
            ),
            name: plan.target.name.clone(),
        }
    }

    /// The form: one required string field.
    pub(crate) fn schema(&self) -> Value {
        serde_json::json!({
            "type": "object",
            "properties": {
                Self::FIELD: {
                    "type": "string",
                    "title": "Deployment name",
                    "description": format!("Type {} to confirm", self.name),
                }
            },
            "required": [Self::FIELD],
        })
    }
}

/// A person's answer.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Answer {
    /// Accepted, with the form's content.
    Accept(Option<Value>),
    /// Declined.
    Decline,
    /// Dismissed.
    Cancel,
}

impl Answer {
    /// An `ElicitResult` as JSON (`{"action": ..., "content": ...}`).
    fn from_json(value: &Value) -> Option<Answer> {
        match value.get("action")?.as_str()? {
            "accept" => Some(Answer::Accept(value.get("content").cloned())),
            "decline" => Some(Answer::Decline),
            "cancel" => Some(Answer::Cancel),
            _ => None,
        }
    }
}

/// A 2026-07-28 first round: ask `question`, and send `state` back with the answer.
#[derive(Debug)]
pub(crate) struct InputRequired {
    pub(crate) question: Question,
    pub(crate) state: String,
}

/// A call the person (or the fallback) confirmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Confirmed {
    /// The digest of the plan that was confirmed.
    pub(crate) digest: String,
    /// How: `elicitation`, `request_state` or `confirm_name`.
    pub(crate) via: &'static str,
}

/// Why a confirmation did not complete.
#[derive(Debug)]
pub(crate) enum NotConfirmed {
    /// Ask first (2026-07-28).
    Ask(InputRequired),
    /// Refused.
    Refused(ToolError),
}

impl From<ToolError> for NotConfirmed {
    fn from(error: ToolError) -> Self {
        NotConfirmed::Refused(error)
    }
}

/// Whether a tool's calls ask first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Requirement {
    Never,
    IfProduction,
    Always,
}

impl Requirement {
    pub(crate) fn applies(self, plan: &Plan) -> bool {
        match self {
            Requirement::Never => false,
            Requirement::IfProduction => plan.production,
            Requirement::Always => true,
        }
    }
}

/// What the sealed state carries; the rest is bound as associated data.
#[derive(Serialize, Deserialize)]
struct Sealed {
    /// Single-use nonce.
    n: String,
    /// Digest of the plan the person is shown.
    d: String,
}

/// The policy, the codec and the nonce store.
pub(crate) struct Confirmations {
    config: ConfirmationConfig,
    codec: RequestStateCodec,
    nonces: Arc<dyn NonceStore>,
}

impl Confirmations {
    pub(crate) fn new(config: ConfirmationConfig) -> Result<Self, String> {
        Ok(Confirmations {
            codec: config.codec()?,
            config,
            nonces: Arc::new(MemoryNonceStore::new()),
        })
    }

    /// Remembers used nonces in `store` instead of this process's memory.
    pub(crate) fn with_nonce_store(mut self, store: Arc<dyn NonceStore>) -> Self {
        self.nonces = store;
        self
    }

    /// Whether calls of a tool with `access` ask first.
    pub(crate) fn requirement(&self, access: Access) -> Requirement {
        match access {
            Access::Read => Requirement::Never,
            Access::Destructive => match self.config.destructive {
                DestructivePolicy::Elicit => Requirement::Always,
                DestructivePolicy::None => Requirement::Never,
            },
            Access::Write => match self.config.write {
                WritePolicy::None => Requirement::Never,
                WritePolicy::Production => Requirement::IfProduction,
                WritePolicy::All => Requirement::Always,
            },
        }
    }

    fn fallback(&self, identity: &Identity) -> Fallback {
        self.config
            .fallback
            .unwrap_or(if identity.auth_method == AuthMethod::Stdio {
                Fallback::ConfirmName
            } else {
                Fallback::Deny
            })
    }

    /// Whether a tool with `access` is offered to a caller whose client can (or cannot) ask:
    /// not when every call of it would be refused.
    pub(crate) fn offered(&self, access: Access, identity: &Identity, can_ask: bool) -> bool {
        can_ask
            || self.requirement(access) != Requirement::Always
            || self.fallback(identity) == Fallback::ConfirmName
    }

    /// Confirms the call of `tool` with `arguments` that `plan` describes, or says why not.
    /// `replan` describes it again, for the stale check after a person took their time.
    pub(crate) async fn confirm<F, Fut>(
        &self,
        tool: &str,
        arguments: &Value,
        identity: &Identity,
        asker: Asker,
        plan: &Plan,
        replan: F,
    ) -> Result<Confirmed, NotConfirmed>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Plan, ToolError>>,
    {
        let digest = plan.digest();
        match asker {
            Asker::None => match self.fallback(identity) {
                Fallback::ConfirmName => Ok(Confirmed {
                    digest,
                    via: "confirm_name",
                }),
                Fallback::Deny => Err(no_elicitation(tool, plan).into()),
            },
            Asker::Session(elicitor) => {
                let question = Question::for_plan(plan, identity);
                let answer = elicitor.elicit(&question).await.map_err(|e| {
                    ToolError::refused(
                        RefusalReason::Cancelled,
                        format!(
                            "Refused: the person was asked to confirm but no answer came back \
                             ({e}). Nothing was sent to WebOps."
                        ),
                    )
                })?;
                check_answer(&answer, plan)?;
                // The person took their time: the deployment must still be what they saw.
                if replan().await?.digest() != digest {
                    return Err(stale(plan).into());
                }
                Ok(Confirmed {
                    digest,
                    via: "elicitation",
                })
            }
            Asker::Stateless { state: None, .. } => {
                let bound = binding(tool, arguments, identity);
                let sealed = Sealed {
                    n: uuid::Uuid::new_v4().to_string(),
                    d: digest,
                };
                let options = SealOptions::new()
                    .associated_data(bound.as_bytes())
                    .ttl(self.config.state_ttl);
                let state = self
                    .codec
                    .seal_json_with(&sealed, &options)
                    .map_err(|e| ToolError::new(ToolErrorKind::Internal, e.to_string()))?;
                Err(NotConfirmed::Ask(InputRequired {
                    question: Question::for_plan(plan, identity),
                    state,
                }))
            }
            Asker::Stateless {
                state: Some(state),
                responses,
            } => {
                let bound = binding(tool, arguments, identity);
                let sealed: Sealed = self
                    .codec
                    .open_json_with(&state, bound.as_bytes())
                    .map_err(|e| unopened(&e))?;
                let ttl = self.config.state_ttl;
                match self.nonces.consume(&sealed.n, ttl).await {
                    Ok(true) => {}
                    Ok(false) => {
                        return Err(ToolError::refused(
                            RefusalReason::Replayed,
                            "Refused: this confirmation was already used; each one confirms \
                             a single call. Nothing was sent to WebOps. Call the tool again \
                             without requestState to ask the person anew.",
                        )
                        .into());
                    }
                    Err(e) => {
                        return Err(ToolError::new(
                            ToolErrorKind::Unavailable,
                            format!(
                                "the confirmation could not be checked ({e}); nothing was \
                                 sent to WebOps, retry shortly"
                            ),
                        )
                        .into());
                    }
                }
                let answer = responses
                    .as_ref()
                    .and_then(|r| r.get(Question::KEY))
                    .and_then(Answer::from_json)
                    .ok_or_else(|| {
                        ToolError::refused(
                            RefusalReason::Validation,
                            format!(
                                "Refused: the retry carries no answer to the confirmation \
                                 (inputResponses.{} with an action). Nothing was sent to \
                                 WebOps.",
                                Question::KEY
                            ),
                        )
                    })?;
                check_answer(&answer, plan)?;
                if plan.digest() != sealed.d {
                    return Err(stale(plan).into());
                }
                Ok(Confirmed {
                    digest: sealed.d,
                    via: "request_state",
                })
            }
        }
    }
}

/// What the state is bound to: the caller, the tool and exactly these arguments.
fn binding(tool: &str, arguments: &Value, identity: &Identity) -> String {
    let args = crate::audit::canonical_json(arguments);
    format!(
        "webops-mcp confirmation v1\n{}\n{}\n{tool}\n{}",
        identity.auth_method.as_str(),
        identity.user_id,
        hex::encode(Sha256::digest(args.as_bytes()))
    )
}

fn unopened(error: &RequestStateError) -> ToolError {
    match error {
        RequestStateError::Expired => ToolError::refused(
            RefusalReason::Expired,
            "Refused: the confirmation expired before the answer came back. Nothing was sent \
             to WebOps. Call the tool again without requestState to ask the person anew.",
        ),
        _ => ToolError::refused(
            RefusalReason::Validation,
            "Refused: the requestState does not belong to this call (another caller, tool or \
             arguments, another server's key, or altered). Nothing was sent to WebOps. Call \
             the tool again without requestState to ask the person anew.",
        ),
    }
}

fn check_answer(answer: &Answer, plan: &Plan) -> Result<(), ToolError> {
    let name = &plan.target.name;
    match answer {
        Answer::Decline => Err(ToolError::refused(
            RefusalReason::Declined,
            format!(
                "Refused: the person declined ({}). Nothing was sent to WebOps. Do not retry \
                 unless they ask for it.",
                plan.summary
            ),
        )),
        Answer::Cancel => Err(ToolError::refused(
            RefusalReason::Cancelled,
            format!(
                "Refused: the person dismissed the confirmation ({}). Nothing was sent to \
                 WebOps.",
                plan.summary
            ),
        )),
        Answer::Accept(content) => {
            let typed = content
                .as_ref()
                .and_then(|c| c.get(Question::FIELD))
                .and_then(Value::as_str);
            if typed == Some(name.as_str()) {
                Ok(())
            } else {
                Err(ToolError::refused(
                    RefusalReason::Validation,
                    format!(
                        "Refused: the name the person typed is not the deployment's exact name \
                         '{name}'. Nothing was sent to WebOps."
                    ),
                ))
            }
        }
    }
}

fn stale(plan: &Plan) -> ToolError {
    ToolError::refused(
        RefusalReason::StaleConfirmation,
        format!(
            "Refused: deployment '{}' changed after the person saw it, so their confirmation \
             no longer describes it. Nothing was sent to WebOps. Check its status and ask \
             again.",
            plan.target.name
        ),
    )
}

fn no_elicitation(tool: &str, plan: &Plan) -> ToolError {
    ToolError::refused(
        RefusalReason::NoElicitation,
        format!(
            "Refused: {tool} needs a person to confirm ({}), and this client cannot ask them \
             (it did not declare the MCP elicitation capability). Nothing was sent to WebOps. \
             Use a client that supports elicitation, or ask an operator to set \
             [confirmations] fallback = \"confirm_name\" or relax [confirmations] destructive \
             / write.",
            plan.summary
        ),
    )
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::identity::PermissionSet;
    use crate::plan::Target;

    fn caller(method: AuthMethod) -> Identity {
        Identity::new("alice", method, PermissionSet::all())
    }

    fn plan(status: &str) -> Plan {
        let mut target = Target::new_deployment("shop", "production");
        target.id = Some(9);
        target.status = Some(status.to_owned());
        Plan::new("Delete production deployment 'shop' (id 9)", target).production(true)
    }

    fn confirmations(config: ConfirmationConfig) -> Confirmations {
        Confirmations::new(config).unwrap()
    }

    /// An elicitor that gives one answer.
    struct Says(Answer);

    #[async_trait]
    impl Elicitor for Says {
        async fn elicit(&self, question: &Question) -> Result<Answer, String> {
            assert!(
                question.message.contains("shop (id 9)"),
                "{}",
                question.message
            );
            Ok(self.0.clone())
        }
    }

    fn session(answer: Answer) -> Asker {
        Asker::Session(Arc::new(Says(answer)))
    }

    fn typed(name: &str) -> Answer {
        Answer::Accept(Some(json!({ "name": name })))
    }

    async fn confirm(
        c: &Confirmations,
        args: Value,
        asker: Asker,
        shown: &Plan,
        now: &Plan,
    ) -> Result<Confirmed, NotConfirmed> {
        let now = now.clone();
        c.confirm(
            "t",
            &args,
            &caller(AuthMethod::ApiKey),
            asker,
            shown,
            || async { Ok(now) },
        )
        .await
    }

    fn reason(result: Result<Confirmed, NotConfirmed>) -> RefusalReason {
        match result {
            Err(NotConfirmed::Refused(e)) => e.reason().unwrap(),
            other => panic!("not refused: {other:?}"),
        }
    }

    #[test]
    fn the_policy_maps_access_to_a_requirement() {
        let c = confirmations(ConfirmationConfig::default());
        assert_eq!(c.requirement(Access::Read), Requirement::Never);
        assert_eq!(c.requirement(Access::Write), Requirement::IfProduction);
        assert_eq!(c.requirement(Access::Destructive), Requirement::Always);
        let c = confirmations(
            ConfirmationConfig::default()
                .destructive(DestructivePolicy::None)
                .write(WritePolicy::All),
        );
        assert_eq!(c.requirement(Access::Destructive), Requirement::Never);
        assert_eq!(c.requirement(Access::Write), Requirement::Always);
        assert!(!Requirement::IfProduction.applies(&plan("running").production(false)));
    }

    #[test]
    fn the_fallback_is_the_typed_name_over_stdio_and_deny_elsewhere() {
        let c = confirmations(ConfirmationConfig::default());
        let (stdio, http) = (caller(AuthMethod::Stdio), caller(AuthMethod::Jwt));
        assert!(c.offered(Access::Destructive, &stdio, false));
        assert!(!c.offered(Access::Destructive, &http, false));
        assert!(c.offered(Access::Destructive, &http, true));
        assert!(
            c.offered(Access::Write, &http, false),
            "staging writes need no one"
        );
        let c = confirmations(ConfirmationConfig::default().fallback(Fallback::ConfirmName));
        assert!(c.offered(Access::Destructive, &http, false));
    }

    #[test]
    fn bad_settings_are_named() {
        let ttl = ConfirmationConfig::default().state_ttl(Duration::from_secs(601));
        assert!(
            Confirmations::new(ttl)
                .err()
                .unwrap()
                .contains("state_ttl_secs")
        );
        let short = ConfirmationConfig::default().state_keys(vec![("k".into(), b"short".to_vec())]);
        assert!(
            Confirmations::new(short)
                .err()
                .unwrap()
                .contains("state_keys")
        );
    }

    #[tokio::test]
    async fn a_session_person_must_accept_with_the_exact_name_of_an_unchanged_target() {
        let c = confirmations(ConfirmationConfig::default());
        let (p, args) = (plan("running"), json!({"id": 9}));
        let ok = confirm(&c, args.clone(), session(typed("shop")), &p, &p)
            .await
            .unwrap();
        assert_eq!((ok.via, ok.digest.clone()), ("elicitation", p.digest()));
        for (answer, expected) in [
            (Answer::Decline, RefusalReason::Declined),
            (Answer::Cancel, RefusalReason::Cancelled),
            (typed("Shop"), RefusalReason::Validation),
            (Answer::Accept(None), RefusalReason::Validation),
        ] {
            let result = confirm(&c, args.clone(), session(answer), &p, &p).await;
            assert_eq!(reason(result), expected);
        }
        let moved = plan("stopped");
        let stale = confirm(&c, args, session(typed("shop")), &p, &moved).await;
        assert_eq!(reason(stale), RefusalReason::StaleConfirmation);
    }

    #[tokio::test]
    async fn without_a_way_to_ask_the_fallback_decides() {
        let p = plan("running");
        let deny = confirmations(ConfirmationConfig::default());
        let refused = confirm(&deny, json!({}), Asker::None, &p, &p).await;
        assert_eq!(reason(refused), RefusalReason::NoElicitation);
        let typed_name =
            confirmations(ConfirmationConfig::default().fallback(Fallback::ConfirmName));
        let ok = confirm(&typed_name, json!({}), Asker::None, &p, &p)
            .await
            .unwrap();
        assert_eq!(ok.via, "confirm_name");
    }

    fn first(c: &Confirmations, args: &Value, p: &Plan) -> String {
        let round = futures::executor::block_on(confirm(
            c,
            args.clone(),
            Asker::Stateless {
                state: None,
                responses: None,
            },
            p,
            p,
        ));
        match round {
            Err(NotConfirmed::Ask(ask)) => {
                assert_eq!(ask.question.name, "shop");
                ask.state
            }
            other => panic!("no question: {other:?}"),
        }
    }

    fn answered(state: &str, answer: Value) -> Asker {
        Asker::Stateless {
            state: Some(state.to_owned()),
            responses: Some([(Question::KEY.to_owned(), answer)].into()),
        }
    }

    #[tokio::test]
    async fn a_sealed_state_is_bound_single_use_and_expires() {
        let keys = vec![("k1".to_owned(), vec![7u8; 32])];
        let c = confirmations(ConfirmationConfig::default().state_keys(keys.clone()));
        let (p, args) = (plan("running"), json!({"id": 9}));
        let accept = json!({"action": "accept", "content": {"name": "shop"}});

        let state = first(&c, &args, &p);
        let other_args = confirm(
            &c,
            json!({"id": 10}),
            answered(&state, accept.clone()),
            &p,
            &p,
        );
        assert_eq!(reason(other_args.await), RefusalReason::Validation);
        let ok = confirm(&c, args.clone(), answered(&state, accept.clone()), &p, &p).await;
        assert_eq!(ok.unwrap().via, "request_state");
        let again = confirm(&c, args.clone(), answered(&state, accept.clone()), &p, &p).await;
        assert_eq!(reason(again), RefusalReason::Replayed);

        // Another replica with the same keys opens it; one with other keys does not.
        let state = first(&c, &args, &p);
        let replica = confirmations(ConfirmationConfig::default().state_keys(keys));
        let ok = confirm(
            &replica,
            args.clone(),
            answered(&state, accept.clone()),
            &p,
            &p,
        )
        .await;
        assert!(ok.is_ok());
        let stranger = confirmations(ConfirmationConfig::default());
        let state = first(&c, &args, &p);
        let foreign = confirm(
            &stranger,
            args.clone(),
            answered(&state, accept.clone()),
            &p,
            &p,
        );
        assert_eq!(reason(foreign.await), RefusalReason::Validation);

        let declined = confirm(
            &c,
            args.clone(),
            answered(&state, json!({"action": "decline"})),
            &p,
            &p,
        );
        assert_eq!(reason(declined.await), RefusalReason::Declined);
        // The plan computed on the retry is compared with the one the person saw.
        let state = first(&c, &args, &p);
        let moved = plan("stopped");
        let stale = confirm(
            &c,
            args.clone(),
            answered(&state, accept.clone()),
            &moved,
            &moved,
        );
        assert_eq!(reason(stale.await), RefusalReason::StaleConfirmation);

        let brief =
            confirmations(ConfirmationConfig::default().state_ttl(Duration::from_millis(1)));
        let state = first(&brief, &args, &p);
        tokio::time::sleep(Duration::from_millis(20)).await;
        let late = confirm(&brief, args, answered(&state, accept), &p, &p).await;
        assert_eq!(reason(late), RefusalReason::Expired);
    }
}
