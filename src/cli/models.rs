//! `octo models ...`: list, show, add, update, rm, default, test, bench and providers
//! through the generated ModelService client.
//!
//! API keys are never taken as arguments (they would show in `ps` and shell history):
//! `--api-key-stdin` reads one from the first line of stdin, and `add` and unsaved
//! `test` configs also read [`API_KEY_VAR`] when it is set. `--api-key-env VAR` instead
//! names a variable the *server* reads.

use std::{
    collections::{BTreeMap, HashMap},
    io::{self, BufRead, IsTerminal, Write},
};

use anyhow::{anyhow, bail};
use clap::{Args, Subcommand, ValueEnum};
use prost_types::FieldMask;

use super::{
    GlobalArgs,
    client::Client,
    names::{model_id, model_name},
    output::{
        self, Column, Table, duration, fit, long_time, now_unix, parse_duration, write_fields,
    },
};
use crate::pb;

/// The environment variable `add` (and `test` of an unsaved config) reads an API key from
/// when `--api-key-stdin` is not given.
pub const API_KEY_VAR: &str = "OCTO_MODEL_API_KEY";

#[derive(Args, Debug, PartialEq)]
pub struct ModelsArgs {
    #[command(subcommand)]
    pub command: ModelsCommand,
}

#[derive(Subcommand, Debug, PartialEq)]
pub enum ModelsCommand {
    /// List models, the default first
    #[command(visible_alias = "ls")]
    List,
    /// Show a model
    #[command(visible_alias = "get")]
    Show {
        /// Model id or `models/{id}`
        id: String,
    },
    /// Add a model (the first one becomes the default)
    Add(AddArgs),
    /// Change a model: only the settings given change
    Update(UpdateArgs),
    /// Delete a model; deleting the default promotes another one
    #[command(visible_alias = "delete")]
    Rm {
        /// Model id or `models/{id}`
        id: String,
        /// Delete even the last model while sessions or schedules use it
        #[arg(long)]
        force: bool,
    },
    /// Make a model the server default
    Default {
        /// Model id or `models/{id}`
        id: String,
    },
    /// Send one minimal real request to a stored model, or to an unsaved config given
    /// with --provider/--preset; exits 1 when it fails
    Test(TestArgs),
    /// Measure models' time to first token in parallel, one line per model as it
    /// finishes; exits 1 when any fails
    Bench(BenchArgs),
    /// List the built-in provider presets (for `add --preset`)
    Providers,
}

#[derive(Args, Debug, Default, PartialEq)]
pub struct AddArgs {
    /// The new model's id (a-z, 0-9 and `-`, starting with a letter) or `models/{id}`
    pub id: String,
    #[command(flatten)]
    pub config: ModelFlags,
    /// Make it the server default
    #[arg(long)]
    pub default: bool,
}

#[derive(Args, Debug, Default, PartialEq)]
pub struct UpdateArgs {
    /// Model id or `models/{id}`
    pub id: String,
    #[command(flatten)]
    pub config: ModelFlags,
    /// Make it the server default
    #[arg(long)]
    pub default: bool,
}

#[derive(Args, Debug, Default, PartialEq)]
pub struct TestArgs {
    /// A stored model's id or `models/{id}`; leave out to test the config the flags give
    pub id: Option<String>,
    #[command(flatten)]
    pub config: ModelFlags,
}

#[derive(Args, Debug, Default, PartialEq)]
pub struct BenchArgs {
    /// Model ids or `models/{id}` names [default: every model]
    pub ids: Vec<String>,
    /// Per-model time limit, e.g. 30s or 2m [default: the server's, 30s]
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub timeout: Option<prost_types::Duration>,
    /// The prompt [default: a short fixed prompt]
    #[arg(long, value_name = "TEXT")]
    pub prompt: Option<String>,
}

/// A model's settings as flags; for `update`, only the ones given change.
#[derive(Args, Debug, Default, PartialEq)]
pub struct ModelFlags {
    /// The wire format the provider speaks
    #[arg(long, value_enum)]
    pub provider: Option<ProviderArg>,
    /// Take the provider, base URL, API key variable and a suggested model from a
    /// built-in preset (see `octo models providers`); flags given win
    #[arg(long, value_name = "PRESET")]
    pub preset: Option<String>,
    /// The provider's model id, e.g. gpt-4.1 or claude-sonnet-4-5
    #[arg(long = "model", value_name = "PROVIDER_MODEL")]
    pub provider_model: Option<String>,
    /// The API base URL [default: the provider's]
    #[arg(long, value_name = "URL")]
    pub base_url: Option<String>,
    /// The environment variable, on the server, holding the API key
    #[arg(long, value_name = "VAR")]
    pub api_key_env: Option<String>,
    /// Read the API key from the first line of stdin (keys are never taken as arguments;
    /// `add` and `test` also read OCTO_MODEL_API_KEY)
    #[arg(long)]
    pub api_key_stdin: bool,
    /// Context window in tokens (0 for unknown)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(i32).range(0..))]
    pub context_window: Option<i32>,
    /// Maximum output tokens per request (0 for the provider's default)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(i32).range(0..))]
    pub max_output_tokens: Option<i32>,
    /// What the model can do, comma-separated: tools, vision, reasoning, or none
    #[arg(long, value_enum, value_delimiter = ',', value_name = "LIST")]
    pub capabilities: Option<Vec<CapabilityArg>>,
    /// An extra HTTP header sent with every request (repeatable; replaces all headers)
    #[arg(long = "header", value_name = "NAME=VALUE", value_parser = parse_header)]
    pub headers: Vec<(String, String)>,
    /// A provider option, the value as JSON or else a string (repeatable; replaces all
    /// options), e.g. --option reply=hi --option token_delay_ms=5
    #[arg(long = "option", value_name = "KEY=JSON", value_parser = parse_option)]
    pub options: Vec<(String, serde_json::Value)>,
    /// Human-readable name
    #[arg(long, value_name = "TEXT")]
    pub display_name: Option<String>,
}

impl ModelFlags {
    /// Whether no setting was given.
    fn is_empty(&self) -> bool {
        self == &ModelFlags::default()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ProviderArg {
    /// OpenAI chat completions (OpenAI, DeepSeek, OpenRouter, Groq, Ollama, vLLM, ...)
    #[value(alias = "openai-compatible")]
    Openai,
    /// Anthropic messages
    Anthropic,
    /// The built-in deterministic model
    Mock,
}

impl From<ProviderArg> for pb::ProviderKind {
    fn from(provider: ProviderArg) -> Self {
        match provider {
            ProviderArg::Openai => pb::ProviderKind::OpenaiCompatible,
            ProviderArg::Anthropic => pb::ProviderKind::Anthropic,
            ProviderArg::Mock => pb::ProviderKind::Mock,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum CapabilityArg {
    Tools,
    Vision,
    Reasoning,
    None,
}

fn parse_header(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((name, value)) if !name.trim().is_empty() => {
            Ok((name.trim().to_owned(), value.to_owned()))
        }
        _ => Err(format!("expected NAME=VALUE, got {text:?}")),
    }
}

fn parse_option(text: &str) -> Result<(String, serde_json::Value), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() => {
            let value = serde_json::from_str(value)
                .unwrap_or_else(|_| serde_json::Value::String(value.to_owned()));
            Ok((key.trim().to_owned(), value))
        }
        _ => Err(format!("expected KEY=JSON, got {text:?}")),
    }
}

/// Runs one `octo models` subcommand against the server `global` names.
pub async fn run(
    args: ModelsArgs,
    global: &GlobalArgs,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<()> {
    // Validate before connecting, so mistakes fail fast even without a server.
    let command = args.command;
    command.validate()?;
    let key = command.read_api_key()?;
    let client = global.connect().await?;
    execute(&client, command, key, global.json, out).await
}

impl ModelsCommand {
    fn validate(&self) -> anyhow::Result<()> {
        match self {
            ModelsCommand::List | ModelsCommand::Providers => {}
            ModelsCommand::Show { id }
            | ModelsCommand::Rm { id, .. }
            | ModelsCommand::Default { id }
            | ModelsCommand::Update(UpdateArgs { id, .. }) => {
                model_name(id)?;
            }
            ModelsCommand::Add(args) => {
                model_name(&args.id)?;
                if args.config.provider.is_none() && args.config.preset.is_none() {
                    bail!("`models add` needs --provider or --preset");
                }
            }
            ModelsCommand::Test(args) => match &args.id {
                Some(id) => {
                    model_name(id)?;
                    if !args.config.is_empty() {
                        bail!("give a model id or a config (--provider, --preset, ...), not both");
                    }
                }
                None => {
                    if args.config.provider.is_none() && args.config.preset.is_none() {
                        bail!("give a model id, or --provider or --preset for an unsaved config");
                    }
                }
            },
            ModelsCommand::Bench(args) => {
                for id in &args.ids {
                    model_name(id)?;
                }
            }
        }
        Ok(())
    }

    /// The API key to send: from stdin with `--api-key-stdin`, else for `add` and
    /// unsaved `test` configs from [`API_KEY_VAR`].
    fn read_api_key(&self) -> anyhow::Result<Option<String>> {
        let (config, env_allowed) = match self {
            ModelsCommand::Add(args) => (&args.config, true),
            ModelsCommand::Update(args) => (&args.config, false),
            ModelsCommand::Test(args) => (&args.config, args.id.is_none()),
            _ => return Ok(None),
        };
        if config.api_key_stdin {
            return read_key_from_stdin().map(Some);
        }
        if env_allowed {
            return Ok(std::env::var(API_KEY_VAR)
                .ok()
                .map(|key| key.trim().to_owned())
                .filter(|key| !key.is_empty()));
        }
        Ok(None)
    }
}

fn read_key_from_stdin() -> anyhow::Result<String> {
    let stdin = io::stdin();
    if stdin.is_terminal() {
        eprint!("API key (the input is echoed): ");
        let _ = io::stderr().flush();
    }
    let mut line = String::new();
    stdin.lock().read_line(&mut line)?;
    let key = line.trim();
    if key.is_empty() {
        bail!("--api-key-stdin: no API key on stdin");
    }
    Ok(key.to_owned())
}

/// Runs `command` on an open connection; `api_key` is the key read for it, if any.
pub async fn execute(
    client: &Client,
    command: ModelsCommand,
    api_key: Option<String>,
    json: bool,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<()> {
    match command {
        ModelsCommand::List => list(client, json, out).await,
        ModelsCommand::Show { id } => {
            let model = client
                .models()
                .get_model(pb::GetModelRequest {
                    name: model_name(&id)?,
                })
                .await?
                .into_inner();
            print_model(out, json, &model)
        }
        ModelsCommand::Add(args) => add(client, args, api_key, json, out).await,
        ModelsCommand::Update(args) => update(client, args, api_key, json, out).await,
        ModelsCommand::Rm { id, force } => {
            let name = model_name(&id)?;
            client
                .models()
                .delete_model(pb::DeleteModelRequest {
                    name: name.clone(),
                    force,
                    etag: String::new(),
                })
                .await?;
            if json {
                // DeleteModel returns google.protobuf.Empty, whose canonical JSON is `{}`.
                writeln!(out, "{{}}")?;
            } else {
                writeln!(out, "Deleted model {}", model_id(&name))?;
            }
            Ok(())
        }
        ModelsCommand::Default { id } => {
            let model = set_default(client, model_name(&id)?).await?;
            if json {
                return output::write_json(out, &model);
            }
            writeln!(out, "Default model is now {}", model_id(&model.name))?;
            Ok(())
        }
        ModelsCommand::Test(args) => test(client, args, api_key, json, out).await,
        ModelsCommand::Bench(args) => bench(client, args, json, out).await,
        ModelsCommand::Providers => providers(client, json, out).await,
    }
}

/// `models list`: every page.
pub async fn list(client: &Client, json: bool, out: &mut (dyn Write + Send)) -> anyhow::Result<()> {
    let models_client = client.models();
    let (models, next_page_token) = super::client::collect_pages(true, |page_token| {
        let mut models_client = models_client.clone();
        async move {
            let page = models_client
                .list_models(pb::ListModelsRequest {
                    page_size: 0,
                    page_token,
                })
                .await?
                .into_inner();
            Ok((page.models, page.next_page_token))
        }
    })
    .await?;
    let all = pb::ListModelsResponse {
        models,
        next_page_token,
    };
    if json {
        return output::write_json(out, &all);
    }
    if all.models.is_empty() {
        writeln!(
            out,
            "No models. Add one with `octo models add`, or run `octo serve --demo`."
        )?;
        return Ok(());
    }
    model_table(&all.models).render(out)?;
    Ok(())
}

/// The `models list` table.
pub fn model_table(models: &[pb::Model]) -> Table {
    let mut table = Table::new([
        Column::left("ID"),
        Column::left("PROVIDER"),
        Column::left("MODEL").max_width(40),
        Column::left("BASE URL").max_width(50),
        Column::left("KEY").max_width(30),
        Column::left("DEFAULT"),
    ]);
    for model in models {
        table.push_row([
            model_id(&model.name).to_owned(),
            provider_label(model.provider),
            dash_if_empty(&model.provider_model),
            dash_if_empty(&model.base_url),
            key_hint(model),
            if model.is_default { "yes" } else { "" }.to_owned(),
        ]);
    }
    table
}

fn dash_if_empty(text: &str) -> String {
    if text.is_empty() {
        "-".to_owned()
    } else {
        text.to_owned()
    }
}

/// The masked key the server returns, or `$VAR` for a key the server reads from its
/// environment, or `-`.
fn key_hint(model: &pb::Model) -> String {
    if !model.api_key.is_empty() {
        model.api_key.clone()
    } else if !model.api_key_env.is_empty() {
        format!("${}", model.api_key_env)
    } else {
        "-".to_owned()
    }
}

/// A provider kind as the `--provider` value that selects it.
pub fn provider_label(kind: i32) -> String {
    match pb::ProviderKind::try_from(kind) {
        Ok(pb::ProviderKind::OpenaiCompatible) => "openai".to_owned(),
        Ok(pb::ProviderKind::Anthropic) => "anthropic".to_owned(),
        Ok(pb::ProviderKind::Mock) => "mock".to_owned(),
        Ok(pb::ProviderKind::Unspecified) => "-".to_owned(),
        Err(_) => format!("unknown({kind})"),
    }
}

/// The model `flags` describe and the update_mask paths of the fields they set. A
/// preset fills the provider, base URL, API key variable (unless a key is given) and
/// provider model that the flags leave out.
pub fn model_from_flags(
    flags: &ModelFlags,
    preset: Option<&pb::Provider>,
    api_key: Option<String>,
) -> (pb::Model, Vec<&'static str>) {
    let mut model = pb::Model::default();
    let mut paths = Vec::new();
    let has_key = api_key.is_some();

    if let Some(display_name) = &flags.display_name {
        model.display_name = display_name.clone();
        paths.push("display_name");
    }
    if let Some(provider) = flags.provider {
        model.provider = pb::ProviderKind::from(provider) as i32;
        paths.push("provider");
    } else if let Some(preset) = preset {
        model.provider = preset.kind;
        paths.push("provider");
    }
    if let Some(provider_model) = &flags.provider_model {
        model.provider_model = provider_model.clone();
        paths.push("provider_model");
    } else if let Some(suggested) = preset.and_then(|p| p.suggested_models.first()) {
        model.provider_model = suggested.clone();
        paths.push("provider_model");
    }
    if let Some(base_url) = &flags.base_url {
        model.base_url = base_url.clone();
        paths.push("base_url");
    } else if let Some(preset) = preset.filter(|p| !p.base_url.is_empty()) {
        model.base_url = preset.base_url.clone();
        paths.push("base_url");
    }
    if let Some(key) = api_key {
        model.api_key = key;
        paths.push("api_key");
    }
    if let Some(env) = &flags.api_key_env {
        model.api_key_env = env.clone();
        paths.push("api_key_env");
    } else if let Some(preset) = preset.filter(|p| !has_key && !p.api_key_env.is_empty()) {
        model.api_key_env = preset.api_key_env.clone();
        paths.push("api_key_env");
    }
    if let Some(capabilities) = &flags.capabilities {
        model.capabilities = Some(pb::ModelCapabilities {
            tools: capabilities.contains(&CapabilityArg::Tools),
            vision: capabilities.contains(&CapabilityArg::Vision),
            reasoning: capabilities.contains(&CapabilityArg::Reasoning),
        });
        paths.push("capabilities");
    }
    if let Some(context_window) = flags.context_window {
        model.context_window = context_window;
        paths.push("context_window");
    }
    if let Some(max_output_tokens) = flags.max_output_tokens {
        model.max_output_tokens = max_output_tokens;
        paths.push("max_output_tokens");
    }
    if !flags.headers.is_empty() {
        model.extra_headers = flags.headers.iter().cloned().collect::<HashMap<_, _>>();
        paths.push("extra_headers");
    }
    if !flags.options.is_empty() {
        model.provider_options = Some(prost_types::Struct {
            fields: flags
                .options
                .iter()
                .map(|(key, value)| (key.clone(), json_to_value(value.clone())))
                .collect(),
        });
        paths.push("provider_options");
    }
    (model, paths)
}

/// The preset `flags` name, fetched with ListProviders.
async fn find_preset(client: &Client, flags: &ModelFlags) -> anyhow::Result<Option<pb::Provider>> {
    let Some(id) = flags.preset.as_deref() else {
        return Ok(None);
    };
    let providers = client
        .models()
        .list_providers(pb::ListProvidersRequest {})
        .await?
        .into_inner()
        .providers;
    let known: Vec<String> = providers.iter().map(|p| p.id.clone()).collect();
    providers
        .into_iter()
        .find(|p| p.id.eq_ignore_ascii_case(id.trim()))
        .map(Some)
        .ok_or_else(|| {
            anyhow!(
                "unknown preset {id:?}; the presets are: {}",
                known.join(", ")
            )
        })
}

/// `models add`: CreateModel, then make it the default with `--default`.
async fn add(
    client: &Client,
    args: AddArgs,
    api_key: Option<String>,
    json: bool,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<()> {
    let name = model_name(&args.id)?;
    let preset = find_preset(client, &args.config).await?;
    let (model, _) = model_from_flags(&args.config, preset.as_ref(), api_key);
    let mut created = client
        .models()
        .create_model(pb::CreateModelRequest {
            model: Some(model),
            model_id: model_id(&name).to_owned(),
        })
        .await?
        .into_inner();
    if args.default && !created.is_default {
        created = set_default(client, created.name.clone()).await?;
    }
    print_model(out, json, &created)
}

/// `models update`: UpdateModel of exactly the fields given.
async fn update(
    client: &Client,
    args: UpdateArgs,
    api_key: Option<String>,
    json: bool,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<()> {
    let name = model_name(&args.id)?;
    let preset = find_preset(client, &args.config).await?;
    let (mut model, mut paths) = model_from_flags(&args.config, preset.as_ref(), api_key);
    if args.default {
        model.is_default = true;
        paths.push("is_default");
    }
    if paths.is_empty() {
        bail!("nothing to update: give at least one setting (see `octo models update --help`)");
    }
    model.name = name;
    let updated = client
        .models()
        .update_model(pb::UpdateModelRequest {
            model: Some(model),
            update_mask: Some(FieldMask {
                paths: paths.into_iter().map(str::to_owned).collect(),
            }),
        })
        .await?
        .into_inner();
    print_model(out, json, &updated)
}

async fn set_default(client: &Client, name: String) -> anyhow::Result<pb::Model> {
    Ok(client
        .models()
        .update_model(pb::UpdateModelRequest {
            model: Some(pb::Model {
                name,
                is_default: true,
                ..Default::default()
            }),
            update_mask: Some(FieldMask {
                paths: vec!["is_default".to_owned()],
            }),
        })
        .await?
        .into_inner())
}

/// `models test`: exits 1 (an error) when the request failed.
async fn test(
    client: &Client,
    args: TestArgs,
    api_key: Option<String>,
    json: bool,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<()> {
    let (target, label) = match &args.id {
        Some(id) => {
            let name = model_name(id)?;
            let label = model_id(&name).to_owned();
            (pb::test_model_request::Target::Name(name), label)
        }
        None => {
            let preset = find_preset(client, &args.config).await?;
            let (model, _) = model_from_flags(&args.config, preset.as_ref(), api_key);
            let label = if model.provider_model.is_empty() {
                format!("unsaved {} config", provider_label(model.provider))
            } else {
                format!(
                    "unsaved {} config ({})",
                    provider_label(model.provider),
                    model.provider_model
                )
            };
            (pb::test_model_request::Target::Model(model), label)
        }
    };
    let result = client
        .models()
        .test_model(pb::TestModelRequest {
            target: Some(target),
        })
        .await?
        .into_inner();
    if json {
        output::write_json(out, &result)?;
    } else {
        write_fields(out, &test_fields(&label, &result))?;
    }
    if result.ok {
        Ok(())
    } else {
        out.flush()?;
        Err(anyhow!("the test request to {label} failed"))
    }
}

/// The rows `models test` prints.
pub fn test_fields(label: &str, result: &pb::TestModelResponse) -> Vec<(&'static str, String)> {
    vec![
        ("Model", label.to_owned()),
        ("Result", if result.ok { "ok" } else { "failed" }.to_owned()),
        (
            "Latency",
            result.latency.as_ref().map(duration).unwrap_or_default(),
        ),
        ("Error", fit(&result.error, Some(500))),
        ("Reply", fit(&result.reply_preview, Some(200))),
    ]
}

/// `models bench`: prints each result as it arrives; exits 1 when any model failed.
async fn bench(
    client: &Client,
    args: BenchArgs,
    json: bool,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<()> {
    let names = args
        .ids
        .iter()
        .map(|id| model_name(id))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut stream = client
        .models()
        .benchmark_models(pb::BenchmarkModelsRequest {
            names,
            timeout: args.timeout,
            prompt: args.prompt.unwrap_or_default(),
        })
        .await?
        .into_inner();
    let (mut total, mut failed) = (0usize, 0usize);
    while let Some(result) = stream.message().await? {
        total += 1;
        if !result.ok {
            failed += 1;
        }
        if json {
            output::write_json_line(out, &result)?;
        } else {
            writeln!(out, "{}", bench_line(&result))?;
        }
        out.flush()?;
    }
    if total == 0 && !json {
        writeln!(out, "No models to measure.")?;
    }
    if failed > 0 {
        bail!("{failed} of {total} models failed");
    }
    Ok(())
}

/// One `models bench` line: `mock  ok  ttft 12ms  total 40ms`, then the error if any.
pub fn bench_line(result: &pb::BenchmarkModelsResponse) -> String {
    let time = |d: Option<&prost_types::Duration>| d.map_or_else(|| "-".to_owned(), duration);
    let mut line = format!(
        "{:<20}  {:<6}  ttft {:>7}  total {:>7}",
        model_id(&result.model),
        if result.ok { "ok" } else { "failed" },
        time(result.time_to_first_token.as_ref()),
        time(result.total_time.as_ref()),
    );
    if !result.error.is_empty() {
        line.push_str("  ");
        line.push_str(&fit(&result.error, Some(200)));
    }
    line
}

/// `models providers`.
async fn providers(
    client: &Client,
    json: bool,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<()> {
    let response = client
        .models()
        .list_providers(pb::ListProvidersRequest {})
        .await?
        .into_inner();
    if json {
        return output::write_json(out, &response);
    }
    let mut table = Table::new([
        Column::left("PRESET"),
        Column::left("NAME"),
        Column::left("PROVIDER"),
        Column::left("BASE URL"),
        Column::left("KEY ENV"),
        Column::left("SUGGESTED MODELS").max_width(50),
    ]);
    for provider in &response.providers {
        table.push_row([
            provider.id.clone(),
            provider.display_name.clone(),
            provider_label(provider.kind),
            dash_if_empty(&provider.base_url),
            dash_if_empty(&provider.api_key_env),
            provider.suggested_models.join(", "),
        ]);
    }
    table.render(out)?;
    Ok(())
}

/// A model as canonical JSON, or as a key/value block.
pub fn print_model(
    out: &mut (dyn Write + Send),
    json: bool,
    model: &pb::Model,
) -> anyhow::Result<()> {
    if json {
        return output::write_json(out, model);
    }
    write_fields(out, &model_fields(model, now_unix()))?;
    Ok(())
}

/// The rows of a model's key/value block; empty values are left out when printed.
/// Header values are not shown (they often carry credentials).
pub fn model_fields(model: &pb::Model, now: i64) -> Vec<(&'static str, String)> {
    let capabilities = model
        .capabilities
        .as_ref()
        .map(|c| {
            let names: Vec<&str> = [
                (c.tools, "tools"),
                (c.vision, "vision"),
                (c.reasoning, "reasoning"),
            ]
            .into_iter()
            .filter_map(|(on, name)| on.then_some(name))
            .collect();
            if names.is_empty() {
                "none".to_owned()
            } else {
                names.join(", ")
            }
        })
        .unwrap_or_default();
    let mut headers: Vec<&str> = model.extra_headers.keys().map(String::as_str).collect();
    headers.sort_unstable();
    let options = model
        .provider_options
        .as_ref()
        .filter(|s| !s.fields.is_empty())
        .map(|s| struct_to_json(s).to_string())
        .unwrap_or_default();
    let positive = |n: i32| if n > 0 { n.to_string() } else { String::new() };
    vec![
        ("ID", model_id(&model.name).to_owned()),
        ("Name", model.name.clone()),
        ("Display name", model.display_name.clone()),
        ("Provider", provider_label(model.provider)),
        ("Provider model", model.provider_model.clone()),
        ("Base URL", model.base_url.clone()),
        ("API key", model.api_key.clone()),
        ("API key env", model.api_key_env.clone()),
        ("Capabilities", capabilities),
        ("Context window", positive(model.context_window)),
        ("Max output", positive(model.max_output_tokens)),
        (
            "Default",
            if model.is_default { "yes" } else { "no" }.to_owned(),
        ),
        ("Headers", headers.join(", ")),
        ("Options", fit(&options, Some(200))),
        ("Created", long_time(model.create_time.as_ref(), now)),
        ("Updated", long_time(model.update_time.as_ref(), now)),
    ]
}

/// A JSON value as a protobuf `Value`.
pub fn json_to_value(value: serde_json::Value) -> prost_types::Value {
    use prost_types::value::Kind;
    let kind = match value {
        serde_json::Value::Null => Kind::NullValue(prost_types::NullValue::NullValue as i32),
        serde_json::Value::Bool(b) => Kind::BoolValue(b),
        serde_json::Value::Number(n) => Kind::NumberValue(n.as_f64().unwrap_or_default()),
        serde_json::Value::String(s) => Kind::StringValue(s),
        serde_json::Value::Array(items) => Kind::ListValue(prost_types::ListValue {
            values: items.into_iter().map(json_to_value).collect(),
        }),
        serde_json::Value::Object(map) => Kind::StructValue(prost_types::Struct {
            fields: map
                .into_iter()
                .map(|(key, value)| (key, json_to_value(value)))
                .collect(),
        }),
    };
    prost_types::Value { kind: Some(kind) }
}

/// A protobuf `Value` as JSON.
pub fn value_to_json(value: &prost_types::Value) -> serde_json::Value {
    use prost_types::value::Kind;
    match &value.kind {
        None | Some(Kind::NullValue(_)) => serde_json::Value::Null,
        Some(Kind::BoolValue(b)) => serde_json::Value::Bool(*b),
        Some(Kind::NumberValue(n)) => {
            // Whole numbers print without a fraction, as they were typed.
            if n.fract() == 0.0 && n.abs() < 9.0e15 {
                serde_json::Value::from(*n as i64)
            } else {
                serde_json::Number::from_f64(*n).map_or(serde_json::Value::Null, Into::into)
            }
        }
        Some(Kind::StringValue(s)) => serde_json::Value::String(s.clone()),
        Some(Kind::ListValue(list)) => list.values.iter().map(value_to_json).collect(),
        Some(Kind::StructValue(s)) => struct_to_json(s),
    }
}

/// A protobuf `Struct` as a JSON object, keys sorted.
pub fn struct_to_json(value: &prost_types::Struct) -> serde_json::Value {
    let sorted: BTreeMap<&String, serde_json::Value> = value
        .fields
        .iter()
        .map(|(key, value)| (key, value_to_json(value)))
        .collect();
    serde_json::Value::Object(
        sorted
            .into_iter()
            .map(|(key, value)| (key.clone(), value))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::cli::{Cli, Command};

    fn parse(args: &[&str]) -> ModelsCommand {
        let cli = Cli::try_parse_from(args).expect("parses");
        match cli.command {
            Command::Models(args) => args.command,
            other => panic!("not a models command: {other:?}"),
        }
    }

    #[test]
    fn add_flags_become_a_model() {
        let command = parse(&[
            "octo",
            "models",
            "add",
            "gpt",
            "--provider",
            "openai",
            "--model",
            "gpt-4.1",
            "--base-url",
            "http://localhost:1/v1",
            "--api-key-env",
            "MY_KEY",
            "--context-window",
            "128000",
            "--max-output-tokens",
            "4096",
            "--capabilities",
            "tools,vision",
            "--header",
            "X-Team=core",
            "--option",
            "temperature=0.5",
            "--option",
            "reply=hello",
            "--display-name",
            "GPT",
            "--default",
        ]);
        let ModelsCommand::Add(args) = command else {
            panic!("not add: {command:?}");
        };
        assert_eq!(args.id, "gpt");
        assert!(args.default);
        let (model, paths) = model_from_flags(&args.config, None, None);
        assert_eq!(model.provider, pb::ProviderKind::OpenaiCompatible as i32);
        assert_eq!(model.provider_model, "gpt-4.1");
        assert_eq!(model.base_url, "http://localhost:1/v1");
        assert_eq!(model.api_key_env, "MY_KEY");
        assert_eq!(model.api_key, "");
        assert_eq!(model.context_window, 128_000);
        assert_eq!(model.max_output_tokens, 4096);
        assert_eq!(
            model.capabilities,
            Some(pb::ModelCapabilities {
                tools: true,
                vision: true,
                reasoning: false
            })
        );
        assert_eq!(
            model.extra_headers.get("X-Team").map(String::as_str),
            Some("core")
        );
        let options = struct_to_json(model.provider_options.as_ref().expect("options"));
        assert_eq!(
            options,
            serde_json::json!({"temperature": 0.5, "reply": "hello"})
        );
        assert_eq!(model.display_name, "GPT");
        assert_eq!(
            paths,
            [
                "display_name",
                "provider",
                "provider_model",
                "base_url",
                "api_key_env",
                "capabilities",
                "context_window",
                "max_output_tokens",
                "extra_headers",
                "provider_options"
            ]
        );
    }

    #[test]
    fn update_masks_exactly_the_fields_given() {
        let ModelsCommand::Update(args) = parse(&[
            "octo",
            "models",
            "update",
            "models/gpt",
            "--base-url",
            "http://x",
            "--capabilities",
            "none",
        ]) else {
            panic!("not update");
        };
        let (model, paths) = model_from_flags(&args.config, None, Some("sk-1".into()));
        assert_eq!(paths, ["base_url", "api_key", "capabilities"]);
        assert_eq!(model.api_key, "sk-1");
        assert_eq!(model.capabilities, Some(pb::ModelCapabilities::default()));
        let (_, paths) = model_from_flags(&ModelFlags::default(), None, None);
        assert!(paths.is_empty());
    }

    #[test]
    fn a_preset_fills_what_the_flags_leave_out() {
        let preset = pb::Provider {
            id: "groq".into(),
            kind: pb::ProviderKind::OpenaiCompatible as i32,
            base_url: "https://api.groq.com/openai/v1".into(),
            api_key_env: "GROQ_API_KEY".into(),
            suggested_models: vec!["llama-3.3-70b".into(), "other".into()],
            ..Default::default()
        };
        let flags = ModelFlags {
            preset: Some("groq".into()),
            provider_model: Some("mine".into()),
            ..Default::default()
        };
        let (model, paths) = model_from_flags(&flags, Some(&preset), None);
        assert_eq!(model.provider, pb::ProviderKind::OpenaiCompatible as i32);
        assert_eq!(model.provider_model, "mine");
        assert_eq!(model.base_url, "https://api.groq.com/openai/v1");
        assert_eq!(model.api_key_env, "GROQ_API_KEY");
        assert_eq!(
            paths,
            ["provider", "provider_model", "base_url", "api_key_env"]
        );
        // A key given directly wins over the preset's variable.
        let (model, _) = model_from_flags(&flags, Some(&preset), Some("k".into()));
        assert_eq!(model.api_key_env, "");
        let (model, _) = model_from_flags(
            &ModelFlags {
                preset: Some("groq".into()),
                ..Default::default()
            },
            Some(&preset),
            None,
        );
        assert_eq!(model.provider_model, "llama-3.3-70b");
    }

    #[test]
    fn bad_flags_are_rejected() {
        for bad in [
            &["octo", "models", "add", "x", "--provider", "gemini"][..],
            &["octo", "models", "add", "x", "--header", "novalue"][..],
            &["octo", "models", "add", "x", "--context-window", "-1"][..],
            &["octo", "models", "add", "x", "--capabilities", "telepathy"][..],
            &["octo", "models", "add", "x", "--api-key", "sk-secret"][..],
            &["octo", "models", "bench", "--timeout", "soon"][..],
            &["octo", "models", "rm"][..],
        ] {
            assert!(Cli::try_parse_from(bad).is_err(), "{bad:?}");
        }
        let add = parse(&["octo", "models", "add", "x"]);
        assert!(add.validate().is_err(), "add without a provider");
        let test = parse(&["octo", "models", "test", "x", "--provider", "mock"]);
        assert!(test.validate().is_err(), "an id and a config");
        assert!(parse(&["octo", "models", "test"]).validate().is_err());
        assert!(
            parse(&["octo", "models", "test", "--provider", "mock"])
                .validate()
                .is_ok()
        );
        assert!(
            parse(&["octo", "models", "show", "sessions/x"])
                .validate()
                .is_err()
        );
    }

    #[test]
    fn other_commands_parse() {
        assert_eq!(parse(&["octo", "model", "ls"]), ModelsCommand::List);
        assert_eq!(
            parse(&["octo", "models", "rm", "x", "--force"]),
            ModelsCommand::Rm {
                id: "x".into(),
                force: true
            }
        );
        assert_eq!(
            parse(&["octo", "models", "default", "models/x"]),
            ModelsCommand::Default {
                id: "models/x".into()
            }
        );
        assert_eq!(
            parse(&[
                "octo",
                "models",
                "bench",
                "a",
                "models/b",
                "--timeout",
                "1m30s",
                "--prompt",
                "hi"
            ]),
            ModelsCommand::Bench(BenchArgs {
                ids: vec!["a".into(), "models/b".into()],
                timeout: Some(prost_types::Duration {
                    seconds: 90,
                    nanos: 0
                }),
                prompt: Some("hi".into()),
            })
        );
        assert_eq!(
            parse(&["octo", "models", "providers"]),
            ModelsCommand::Providers
        );
    }

    #[test]
    fn table_shows_the_key_hint_never_more() {
        let models = vec![
            pb::Model {
                name: "models/gpt".into(),
                provider: pb::ProviderKind::OpenaiCompatible as i32,
                provider_model: "gpt-4.1".into(),
                api_key: "sk-****cdef".into(),
                is_default: true,
                ..Default::default()
            },
            pb::Model {
                name: "models/claude".into(),
                provider: pb::ProviderKind::Anthropic as i32,
                api_key_env: "ANTHROPIC_API_KEY".into(),
                ..Default::default()
            },
        ];
        let mut buf = Vec::new();
        model_table(&models).render(&mut buf).expect("render");
        let text = String::from_utf8(buf).expect("utf8");
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("ID      PROVIDER"), "{text}");
        assert!(lines[1].starts_with("gpt     openai"), "{text}");
        assert!(lines[1].contains("sk-****cdef"), "{text}");
        assert!(lines[1].ends_with("yes"), "{text}");
        assert!(lines[2].contains("$ANTHROPIC_API_KEY"), "{text}");
        assert!(lines[2].contains("anthropic"), "{text}");
    }

    #[test]
    fn test_and_bench_results_read_well() {
        let ok = pb::TestModelResponse {
            ok: true,
            latency: Some(prost_types::Duration {
                seconds: 0,
                nanos: 12_000_000,
            }),
            reply_preview: "Hello\nthere".into(),
            error: String::new(),
        };
        let fields = test_fields("mock", &ok);
        assert!(fields.contains(&("Result", "ok".into())));
        assert!(fields.contains(&("Latency", "12ms".into())));
        assert!(fields.contains(&("Reply", "Hello there".into())));

        let line = bench_line(&pb::BenchmarkModelsResponse {
            model: "models/slow".into(),
            ok: false,
            error: "timed out".into(),
            ..Default::default()
        });
        assert!(line.starts_with("slow  "), "{line}");
        assert!(line.contains("failed"), "{line}");
        assert!(line.contains("ttft       -"), "{line}");
        assert!(line.ends_with("timed out"), "{line}");
    }

    #[test]
    fn options_round_trip_through_struct() {
        let value = serde_json::json!({"a": [1, true, null, "s"], "b": {"c": 2.5}});
        let prost_types::Value {
            kind: Some(prost_types::value::Kind::StructValue(s)),
        } = json_to_value(value.clone())
        else {
            panic!("not a struct");
        };
        assert_eq!(struct_to_json(&s), value);
    }
}
