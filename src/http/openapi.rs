//! `GET /openapi.json`: an OpenAPI 3.1 description of the JSON/HTTP mapping, generated
//! from the same descriptor set and compiled routes the transcoder serves, so
//! the document cannot drift from what the server answers.
//!
//! What maps to what (the transcoder's own rules, in OpenAPI terms):
//! - Each route is one operation; `operationId` is `<Service>_<Method>` (additional
//!   bindings get `_2`, `_3`...), tagged with its service; summary and description are
//!   the proto comments.
//! - A path variable that captures a resource name (`{name=sessions/*/turns/*}`) is
//!   spelled out as its segments, one parameter per `*`, named after its collection
//!   (`/v1/sessions/{session}/turns/{turn}`); the server joins them back into `name`.
//! - Fields not bound by the path or the body are query parameters, by their JSON names,
//!   nested singular messages as `a.b` (what the transcoder accepts).
//! - Schemas follow the proto3 JSON mapping the server writes: JSON field names, enums as
//!   their names, 64-bit integers as strings, Timestamps as RFC 3339 strings, Durations
//!   as `"1.5s"`. Fields at their default value are left out of answers, so no field is
//!   `required`.
//! - Server-streaming RPCs answer `text/event-stream`: each event's `data:` is one
//!   message of the response type as JSON (`x-octo-event` names its schema), `id:` its
//!   sequence; an error ends the stream as `event: error` with a `google.rpc.Status`.
//! - RPCs answering `google.api.HttpBody` answer raw bytes (`application/octet-stream`,
//!   `format: binary`): the actual type is the first message's `content_type`.
//! - Errors are `google.rpc.Status` JSON with the HTTP status of their gRPC code.
//!
//! The document is built on the first request (~140 KB for the v1 API) and then served
//! as bytes; no auth, like the probes: it describes the public contract, nothing of this
//! server's data.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use prost_reflect::{
    DescriptorPool, EnumDescriptor, ExtensionDescriptor, FieldDescriptor, Kind, MessageDescriptor,
    Value,
};
use serde_json::{Map, Value as Json, json};

use super::Route;
use super::route::Segment;
use super::transcode::{ACCESS_TOKEN_PARAM, BodyRule};

/// How deep query parameters follow nested singular messages (`a.b.c`).
const MAX_QUERY_DEPTH: usize = 3;

/// Builds the document for `routes`, whose descriptors come from `pool`.
pub fn document(pool: &DescriptorPool, routes: &[Route]) -> Json {
    let mut builder = Builder {
        comments: Comments::new(pool),
        field_behavior: pool.get_extension_by_name("google.api.field_behavior"),
        schemas: BTreeMap::new(),
        pending: Vec::new(),
    };
    let mut paths: BTreeMap<String, Map<String, Json>> = BTreeMap::new();
    let mut operation_ids: HashMap<String, usize> = HashMap::new();
    let mut tags: BTreeMap<String, String> = BTreeMap::new();
    for route in routes {
        let method = route.rpc.method.clone();
        let service = method.parent_service();
        tags.entry(service.name().to_owned()).or_insert_with(|| {
            builder
                .comments
                .of(service.parent_file().name(), service.path())
        });
        let base = format!("{}_{}", service.name(), method.name());
        let seen = operation_ids.entry(base.clone()).or_insert(0);
        *seen += 1;
        let operation_id = match *seen {
            1 => base,
            n => format!("{base}_{n}"),
        };
        let (path, parameters) = builder.path(route);
        let operation = builder.operation(route, operation_id, parameters);
        paths
            .entry(path)
            .or_default()
            .insert(route.method.as_str().to_ascii_lowercase(), operation);
    }
    // The error body: google.rpc.Status from the pool (the server renders errors with it).
    match pool.get_message_by_name(ERROR_SCHEMA) {
        Some(status) => {
            builder.reference(&status);
        }
        None => {
            builder
                .schemas
                .insert(ERROR_SCHEMA.to_owned(), json!({"type": "object"}));
        }
    }
    builder.drain();
    let schemas: Map<String, Json> = builder.schemas.into_iter().collect();
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Octo",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "The JSON/HTTP mapping of Octo's gRPC API (octo.v1), generated from \
                its google.api.http rules. The same API is served over gRPC and gRPC-Web on the \
                same port.",
            "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"},
        },
        "tags": tags
            .into_iter()
            .map(|(name, description)| json!({"name": name, "description": description}))
            .collect::<Vec<_>>(),
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "The server's token (`octo serve` prints where it is).",
                },
                "accessToken": {
                    "type": "apiKey",
                    "in": "query",
                    "name": ACCESS_TOKEN_PARAM,
                    "description": "The token as a query parameter, for event streams opened \
                        by browsers' EventSource, which cannot set headers.",
                },
            },
            "responses": {
                "Error": {
                    "description": "An error: `google.rpc.Status` as JSON (`code`, `message`, \
                        `details` with an `ErrorInfo` reason and, for bad input, the violated \
                        fields), with the HTTP status of its gRPC code.",
                    "content": {"application/json": {"schema": schema_ref(ERROR_SCHEMA)}},
                },
            },
        },
    })
}

/// The component name of the error body (`google.rpc.Status`).
const ERROR_SCHEMA: &str = "google.rpc.Status";

fn schema_ref(name: &str) -> Json {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

struct Builder {
    comments: Comments,
    field_behavior: Option<ExtensionDescriptor>,
    /// Component schemas built so far, by full message or enum name.
    schemas: BTreeMap<String, Json>,
    /// Messages referenced but not yet built.
    pending: Vec<MessageDescriptor>,
}

impl Builder {
    /// The OpenAPI path of a route and its path parameters.
    fn path(&self, route: &Route) -> (String, Vec<Json>) {
        let template = &route.template;
        let mut path = String::new();
        let mut parameters = Vec::new();
        let mut names = BTreeSet::new();
        for (index, segment) in template.segments.iter().enumerate() {
            path.push('/');
            let variable = template
                .variables
                .iter()
                .zip(&route.bindings)
                .find(|(v, _)| v.start <= index && v.end.is_none_or(|end| index < end));
            match segment {
                Segment::Literal(literal) => path.push_str(literal),
                Segment::Single | Segment::Multi => {
                    let previous = index
                        .checked_sub(1)
                        .and_then(|i| match &template.segments[i] {
                            Segment::Literal(l) => Some(singular(l)),
                            _ => None,
                        });
                    let whole = variable.filter(|(v, _)| v.end == Some(v.start + 1));
                    let mut name = match (whole, previous) {
                        // `{session}`, `{name=*}`: the field itself.
                        (Some((v, _)), _) => v.field_path.join("."),
                        (None, Some(collection)) => collection,
                        (None, None) => format!("segment{index}"),
                    };
                    while !names.insert(name.clone()) {
                        name.push('_');
                    }
                    path.push('{');
                    path.push_str(&name);
                    path.push('}');
                    let mut description = String::new();
                    if let Some((v, fields)) = variable {
                        let field = v.field_path.join(".");
                        if whole.is_none() {
                            description = format!(
                                "The `{{{name}}}` of `{field}` = `{}`.",
                                name_pattern(route, v)
                            );
                        } else if let Some(leaf) = fields.last() {
                            description = self.field_doc(leaf);
                        }
                    }
                    let mut parameter = json!({
                        "name": name,
                        "in": "path",
                        "required": true,
                        "schema": {"type": "string"},
                    });
                    if matches!(segment, Segment::Multi) {
                        parameter["allowReserved"] = json!(true);
                    }
                    if !description.is_empty() {
                        parameter["description"] = json!(description);
                    }
                    parameters.push(parameter);
                }
            }
        }
        if template.segments.is_empty() {
            path.push('/');
        }
        if let Some(verb) = &template.verb {
            path.push(':');
            path.push_str(verb);
        }
        (path, parameters)
    }

    fn operation(
        &mut self,
        route: &Route,
        operation_id: String,
        mut parameters: Vec<Json>,
    ) -> Json {
        let rpc = &route.rpc;
        let method = &rpc.method;
        let doc = self.comments.of(method.parent_file().name(), method.path());
        let streaming = matches!(rpc.answer, super::Answer::Events(_));
        // Query parameters: every field not bound by the path or the body.
        if !matches!(route.body, BodyRule::Whole) {
            let bound: Vec<&FieldDescriptor> = route
                .bindings
                .iter()
                .filter_map(|fields| fields.first())
                .chain(match &route.body {
                    BodyRule::Field(field) => Some(field),
                    _ => None,
                })
                .collect();
            let mut stack = Vec::new();
            self.query_parameters(&rpc.input, "", &bound, &mut stack, &mut parameters);
        }
        let mut operation = json!({
            "operationId": operation_id,
            "tags": [method.parent_service().name()],
            "summary": summary(&doc),
            "description": doc,
            "parameters": parameters,
            "responses": {"default": {"$ref": "#/components/responses/Error"}},
        });
        match &route.body {
            BodyRule::None => {}
            BodyRule::Whole => {
                operation["requestBody"] = json!({
                    "required": true,
                    "content": {"application/json": {"schema": self.reference(&rpc.input)}},
                });
            }
            BodyRule::Field(field) => {
                operation["requestBody"] = json!({
                    "required": true,
                    "description": self.field_doc(field),
                    "content": {"application/json": {"schema": self.field_schema(field)}},
                });
            }
        }
        let ok = if matches!(rpc.answer, super::Answer::Body) {
            json!({
                "description": "The raw bytes (a download, streamed): `Content-Type` is the \
                    type of the content. A failure before the first byte is a \
                    `google.rpc.Status` JSON error; one after it aborts the body.",
                "content": {"application/octet-stream": {
                    "schema": {"type": "string", "format": "binary"},
                }},
            })
        } else if streaming {
            let event = self.reference(&rpc.output);
            json!({
                "description": format!(
                    "Server-sent events: each `data:` is one `{}` as JSON, its `id:` the event's \
                     sequence (send it back as `Last-Event-ID` to resume). A failure ends the \
                     stream with `event: error` and a `google.rpc.Status`.",
                    rpc.output.full_name()
                ),
                "content": {"text/event-stream": {
                    "schema": {"type": "string"},
                    "x-octo-event": event,
                }},
            })
        } else {
            let schema = match &route.response_body {
                Some(field) => self.field_schema(field),
                None => self.reference(&rpc.output),
            };
            json!({
                "description": format!("`{}` as JSON.", rpc.output.full_name()),
                "content": {"application/json": {"schema": schema}},
            })
        };
        operation["responses"]["200"] = ok;
        if streaming {
            operation["security"] = json!([{"bearer": []}, {"accessToken": []}]);
        }
        operation
    }

    fn query_parameters(
        &mut self,
        message: &MessageDescriptor,
        prefix: &str,
        bound: &[&FieldDescriptor],
        stack: &mut Vec<String>,
        out: &mut Vec<Json>,
    ) {
        stack.push(message.full_name().to_owned());
        for field in message.fields() {
            if prefix.is_empty() && bound.contains(&&field) {
                continue;
            }
            let name = format!("{prefix}{}", field.json_name());
            if field.is_map() {
                continue;
            }
            match field.kind() {
                Kind::Message(nested) if well_known(&nested).is_none() => {
                    if field.is_list()
                        || stack.len() >= MAX_QUERY_DEPTH
                        || stack.iter().any(|m| m == nested.full_name())
                    {
                        continue;
                    }
                    self.query_parameters(&nested, &format!("{name}."), bound, stack, out);
                }
                _ => {
                    let mut parameter = json!({
                        "name": name,
                        "in": "query",
                        "schema": self.field_schema(&field),
                    });
                    let doc = self.field_doc(&field);
                    if !doc.is_empty() {
                        parameter["description"] = json!(doc);
                    }
                    if field.is_list() {
                        parameter["explode"] = json!(true);
                    }
                    out.push(parameter);
                }
            }
        }
        stack.pop();
    }

    /// A `$ref` to the component schema of `message` (queued to be built), or the inline
    /// schema of a well-known type.
    fn reference(&mut self, message: &MessageDescriptor) -> Json {
        if let Some(schema) = well_known(message) {
            return schema;
        }
        let name = message.full_name().to_owned();
        if !self.schemas.contains_key(&name) {
            // A placeholder marks it as taken, so recursive messages terminate.
            self.schemas.insert(name.clone(), Json::Null);
            self.pending.push(message.clone());
        }
        schema_ref(&name)
    }

    /// Builds every queued message schema (and what those reference in turn).
    fn drain(&mut self) {
        while let Some(message) = self.pending.pop() {
            let schema = self.message_schema(&message);
            self.schemas.insert(message.full_name().to_owned(), schema);
        }
    }

    fn message_schema(&mut self, message: &MessageDescriptor) -> Json {
        let mut properties = Map::new();
        for field in message.fields() {
            let mut schema = self.field_schema(&field);
            let mut doc = self.field_doc(&field);
            if let Some(oneof) = field.containing_oneof()
                && !field.field_descriptor_proto().proto3_optional()
            {
                let others: Vec<String> = oneof
                    .fields()
                    .filter(|f| f != &field)
                    .map(|f| format!("`{}`", f.json_name()))
                    .collect();
                if !others.is_empty() {
                    if !doc.is_empty() {
                        doc.push_str("\n\n");
                    }
                    doc.push_str(&format!(
                        "One of `{}`: at most one of this and {} is set.",
                        oneof.name(),
                        others.join(", ")
                    ));
                }
            }
            if let Some(object) = schema.as_object_mut() {
                if !doc.is_empty() {
                    object.insert("description".into(), json!(doc));
                }
                match self.behavior(&field) {
                    Some(Behavior::OutputOnly) => {
                        object.insert("readOnly".into(), json!(true));
                    }
                    Some(Behavior::InputOnly) => {
                        object.insert("writeOnly".into(), json!(true));
                    }
                    None => {}
                }
            }
            properties.insert(field.json_name().to_owned(), schema);
        }
        let mut schema = json!({"type": "object", "properties": properties});
        let doc = self
            .comments
            .of(message.parent_file().name(), message.path());
        if !doc.is_empty() {
            schema["description"] = json!(doc);
        }
        schema
    }

    /// The schema of one field's JSON value (arrays and maps included).
    fn field_schema(&mut self, field: &FieldDescriptor) -> Json {
        if field.is_map() {
            let Kind::Message(entry) = field.kind() else {
                return json!({"type": "object"});
            };
            let value = self.kind_schema(&entry.map_entry_value_field().kind());
            return json!({"type": "object", "additionalProperties": value});
        }
        let item = self.kind_schema(&field.kind());
        if field.is_list() {
            json!({"type": "array", "items": item})
        } else {
            item
        }
    }

    fn kind_schema(&mut self, kind: &Kind) -> Json {
        match kind {
            Kind::Double | Kind::Float => json!({"type": "number"}),
            Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => {
                json!({"type": "integer", "format": "int32"})
            }
            Kind::Uint32 | Kind::Fixed32 => {
                json!({"type": "integer", "format": "int64", "minimum": 0})
            }
            Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => {
                json!({"type": "string", "format": "int64", "pattern": "^-?[0-9]+$"})
            }
            Kind::Uint64 | Kind::Fixed64 => {
                json!({"type": "string", "format": "uint64", "pattern": "^[0-9]+$"})
            }
            Kind::Bool => json!({"type": "boolean"}),
            Kind::String => json!({"type": "string"}),
            Kind::Bytes => json!({"type": "string", "contentEncoding": "base64"}),
            Kind::Enum(e) => self.enum_schema(e),
            Kind::Message(m) => self.reference(m),
        }
    }

    /// Enums are components too: a string of their value names.
    fn enum_schema(&mut self, descriptor: &EnumDescriptor) -> Json {
        let name = descriptor.full_name().to_owned();
        if !self.schemas.contains_key(&name) {
            let file = descriptor.parent_file();
            let values: Vec<String> = descriptor.values().map(|v| v.name().to_owned()).collect();
            let mut lines = Vec::new();
            for value in descriptor.values() {
                let doc = self.comments.of(file.name(), value.path());
                if !doc.is_empty() {
                    lines.push(format!("- `{}`: {}", value.name(), doc.replace('\n', " ")));
                }
            }
            let mut doc = self.comments.of(file.name(), descriptor.path());
            if !lines.is_empty() {
                if !doc.is_empty() {
                    doc.push_str("\n\n");
                }
                doc.push_str(&lines.join("\n"));
            }
            let mut schema = json!({"type": "string", "enum": values});
            if !doc.is_empty() {
                schema["description"] = json!(doc);
            }
            self.schemas.insert(name.clone(), schema);
        }
        schema_ref(&name)
    }

    fn field_doc(&self, field: &FieldDescriptor) -> String {
        self.comments.of(field.parent_file().name(), field.path())
    }

    fn behavior(&self, field: &FieldDescriptor) -> Option<Behavior> {
        let extension = self.field_behavior.as_ref()?;
        let options = field.options();
        if !options.has_extension(extension) {
            return None;
        }
        let value = options.get_extension(extension);
        let Value::List(values) = value.as_ref() else {
            return None;
        };
        // google.api.FieldBehavior: OUTPUT_ONLY = 3, INPUT_ONLY = 4.
        values.iter().find_map(|v| match v.as_enum_number() {
            Some(3) => Some(Behavior::OutputOnly),
            Some(4) => Some(Behavior::InputOnly),
            _ => None,
        })
    }
}

enum Behavior {
    OutputOnly,
    InputOnly,
}

/// The inline schema of a well-known type's JSON form, or `None` for other messages.
fn well_known(message: &MessageDescriptor) -> Option<Json> {
    Some(match message.full_name() {
        "google.protobuf.Timestamp" => json!({"type": "string", "format": "date-time"}),
        "google.protobuf.Duration" => json!({
            "type": "string",
            "pattern": "^-?[0-9]+(\\.[0-9]{1,9})?s$",
            "description": "A duration in seconds with an `s` suffix, e.g. `\"1.5s\"`.",
        }),
        "google.protobuf.FieldMask" => json!({
            "type": "string",
            "description": "Field paths separated by commas, in JSON names, e.g. `\"displayName,labels\"`.",
        }),
        "google.protobuf.Empty" => json!({"type": "object"}),
        "google.protobuf.Struct" => json!({"type": "object", "additionalProperties": true}),
        "google.protobuf.Value" => json!({}),
        "google.protobuf.ListValue" => json!({"type": "array"}),
        "google.protobuf.Any" => json!({
            "type": "object",
            "properties": {"@type": {"type": "string"}},
            "required": ["@type"],
            "additionalProperties": true,
        }),
        "google.protobuf.BoolValue" => json!({"type": "boolean"}),
        "google.protobuf.StringValue" => json!({"type": "string"}),
        "google.protobuf.BytesValue" => json!({"type": "string", "contentEncoding": "base64"}),
        "google.protobuf.DoubleValue" | "google.protobuf.FloatValue" => json!({"type": "number"}),
        "google.protobuf.Int32Value" | "google.protobuf.UInt32Value" => json!({"type": "integer"}),
        "google.protobuf.Int64Value" | "google.protobuf.UInt64Value" => {
            json!({"type": "string", "pattern": "^-?[0-9]+$"})
        }
        _ => return None,
    })
}

/// `sessions` → `session`, `deliveries` → `delivery`, `mcpServers` → `mcpServer`.
fn singular(collection: &str) -> String {
    if let Some(stem) = collection.strip_suffix("ies") {
        format!("{stem}y")
    } else if let Some(stem) = collection.strip_suffix('s') {
        stem.to_owned()
    } else {
        collection.to_owned()
    }
}

/// A resource-name variable's shape, e.g. `sessions/{session}/turns/{turn}`.
fn name_pattern(route: &Route, variable: &super::route::Variable) -> String {
    let end = variable.end.unwrap_or(route.template.segments.len());
    let segments = &route.template.segments[variable.start..end];
    segments
        .iter()
        .enumerate()
        .map(|(i, segment)| match segment {
            Segment::Literal(l) => l.clone(),
            Segment::Single | Segment::Multi => match i.checked_sub(1).map(|p| &segments[p]) {
                Some(Segment::Literal(l)) => format!("{{{}}}", singular(l)),
                _ => "*".to_owned(),
            },
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// The first sentence of a comment, for `summary`.
fn summary(doc: &str) -> String {
    let first = doc.split("\n\n").next().unwrap_or("").replace('\n', " ");
    match first.find(". ") {
        Some(end) => first[..=end].to_owned(),
        None => first,
    }
}

/// The leading comments of every element of every file, by file and source path.
struct Comments {
    by_path: HashMap<(String, Vec<i32>), String>,
}

impl Comments {
    fn new(pool: &DescriptorPool) -> Self {
        let mut by_path = HashMap::new();
        for file in pool.files() {
            let Some(info) = &file.file_descriptor_proto().source_code_info else {
                continue;
            };
            for location in &info.location {
                let Some(text) = location.leading_comments.as_deref() else {
                    continue;
                };
                let text = clean_comment(text);
                if !text.is_empty() {
                    by_path.insert((file.name().to_owned(), location.path.clone()), text);
                }
            }
        }
        Self { by_path }
    }

    fn of(&self, file: &str, path: &[i32]) -> String {
        self.by_path
            .get(&(file.to_owned(), path.to_vec()))
            .cloned()
            .unwrap_or_default()
    }
}

/// A comment's text without the one leading space of each line and surrounding blanks.
fn clean_comment(text: &str) -> String {
    text.lines()
        .map(|line| line.strip_prefix(' ').unwrap_or(line).trim_end())
        .collect::<Vec<_>>()
        .join("\n")
        .trim()
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collections_become_singular_parameter_names() {
        assert_eq!(singular("sessions"), "session");
        assert_eq!(singular("deliveries"), "delivery");
        assert_eq!(singular("mcpServers"), "mcpServer");
        assert_eq!(singular("data"), "data");
    }

    #[test]
    fn the_summary_is_the_first_sentence() {
        assert_eq!(
            summary("Gets a session. Then more.\n\nDetails."),
            "Gets a session."
        );
        assert_eq!(
            summary("Lists the\nsessions\n\nMore."),
            "Lists the sessions"
        );
        assert_eq!(summary(""), "");
    }

    #[test]
    fn comments_lose_their_leading_space() {
        assert_eq!(
            clean_comment(" Line one.\n  indented\n\n"),
            "Line one.\n indented"
        );
    }
}
