//! `GET /openapi.json`: an OpenAPI 3.1 document of RuQi's API, generated from the route table
//! (`routes::ROUTES`, the same table that checks every request's parameters) with `utoipa`'s
//! builders, not written by hand. Every route is listed under each of its names (the seed's and
//! the 1.x alias), with GET (parameters in the query) and POST (the same, or a JSON object body
//! whose values win), RuQi's envelope (HTTP 200 and `stat`, the reason in `x-reason`) and the
//! shape of `data`.

use utoipa::openapi::path::{HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn, PathItemBuilder};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::schema::{ArrayBuilder, ArrayItems, ObjectBuilder, OneOfBuilder, Schema, SchemaType, Type};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{
    ComponentsBuilder, ContentBuilder, HeaderBuilder, InfoBuilder, OpenApi, OpenApiBuilder, PathsBuilder, RefOr,
    Required, ResponseBuilder, ResponsesBuilder,
};

use super::routes::{Data, Kind, Param, ROUTES, Spec};

fn string() -> ObjectBuilder {
    ObjectBuilder::new().schema_type(Type::String)
}

fn nullable(t: Type) -> ObjectBuilder {
    ObjectBuilder::new().schema_type(SchemaType::from_iter([t, Type::Null]))
}

fn object(fields: &[(&str, Schema)]) -> Schema {
    let mut o = ObjectBuilder::new().schema_type(Type::Object);
    for (name, schema) in fields {
        o = o.property(*name, schema.clone()).required(*name);
    }
    o.into()
}

/// A parameter's schema: query values are always text; in a JSON body a count may be a number.
fn param_schema(p: &Param) -> Schema {
    match p.kind {
        Kind::Text => string().into(),
        Kind::Count => OneOfBuilder::new()
            .item(string().pattern(Some("^[0-9]+$")))
            .item(ObjectBuilder::new().schema_type(Type::Integer).minimum(Some(0)))
            .into(),
        Kind::Flag => OneOfBuilder::new()
            .item(string().enum_values(Some(["true", "false", "1", "0"])))
            .item(ObjectBuilder::new().schema_type(Type::Boolean))
            .into(),
        Kind::OneOf(words) => string().enum_values(Some(words.iter().copied())).into(),
        Kind::Jobs => OneOfBuilder::new()
            .item(string().description(Some("the list as JSON text")))
            .item(ArrayBuilder::new().items(ArrayItems::RefOrSchema(Box::new(RefOr::T(
                ObjectBuilder::new().schema_type(Type::Object).description(Some("a job's job_add parameters")).into(),
            )))))
            .into(),
    }
}

fn job_item(time_field: &str) -> Schema {
    let mut item = object(&[
        (time_field, nullable(Type::String).description(Some("next run (null or \"None\" when paused)")).into()),
        ("job_id", string().into()),
        ("cmd", string().into()),
        ("rule", string().description(Some("the normalised rule")).into()),
        ("job_trigger", string().enum_values(Some(["cron", "interval", "date"])).into()),
        ("job_name", string().into()),
    ]);
    // Extension, only for a job given its own `timezone` (not required: 1.x-shaped jobs lack them).
    if let Schema::Object(o) = &mut item {
        o.properties.insert("timezone".into(), RefOr::T(string().description(Some("the job's IANA zone")).into()));
        o.properties.insert(
            "next_run_time_rfc3339".into(),
            RefOr::T(nullable(Type::String).description(Some("next run as RFC 3339 with its offset")).into()),
        );
        for (name, doc) in [
            ("timeout", "seconds a run may take"),
            ("kill_grace", "seconds between SIGTERM and SIGKILL"),
            ("retries", "times a failed run is tried again"),
            ("retry_delay", "seconds before the first retry"),
            ("retry_max_delay", "longest delay before a retry"),
            ("misfire_grace", "seconds a run may start late"),
            ("jitter", "seconds fire times are spread over"),
        ] {
            o.properties.insert(
                name.into(),
                RefOr::T(
                    ObjectBuilder::new().schema_type(Type::Integer).minimum(Some(0)).description(Some(doc)).into(),
                ),
            );
        }
        o.properties.insert(
            "misfire".into(),
            RefOr::T(string().enum_values(Some(["skip", "once", "all"])).description(Some("late fire times")).into()),
        );
        o.properties.insert(
            "overlap".into(),
            RefOr::T(
                string()
                    .enum_values(Some(crate::model::Overlap::NAMES))
                    .description(Some("fire times that come while a run of the job goes on"))
                    .into(),
            ),
        );
        o.properties.insert(
            "retry_backoff".into(),
            RefOr::T(ObjectBuilder::new().schema_type(Type::Number).description(Some("retry delay growth")).into()),
        );
        o.properties.insert(
            "calendar".into(),
            RefOr::T(string().description(Some("the job's calendar rule (cn, cn:rest)")).into()),
        );
        o.properties.insert(
            "calendar_note".into(),
            RefOr::T(
                string()
                    .description(Some(
                        "job_show: why the next run's day was judged Monday to Friday (the calendar lacks that year)",
                    ))
                    .into(),
            ),
        );
    }
    item
}

/// One run (`run_list`, `run_show`; the latter with its `output`).
fn run_item(with_output: bool) -> Schema {
    let int = || -> Schema { ObjectBuilder::new().schema_type(Type::Integer).minimum(Some(0)).into() };
    let mut fields: Vec<(&str, Schema)> = vec![
        ("run_id", string().into()),
        ("job_id", string().into()),
        ("job_name", string().into()),
        ("cmd", string().into()),
        ("node", string().description(Some("host:port:pid of the node running it")).into()),
        ("trigger", string().enum_values(Some(["scheduled", "manual", "retry", "backfill"])).into()),
        ("attempt", int()),
        ("state", string().enum_values(Some(["waiting", "running", "ended"])).into()),
        ("outcome", nullable(Type::String).description(Some("success, failed, timeout, killed, lost")).into()),
        ("fire_time", string().into()),
        ("started", string().into()),
        ("ended", nullable(Type::String).into()),
        ("elapsed", ObjectBuilder::new().schema_type(Type::Number).description(Some("seconds")).into()),
        ("kill_requested", ObjectBuilder::new().schema_type(Type::Boolean).into()),
        ("output_bytes", int()),
        ("params", nullable(Type::String).description(Some("the params of a run started by hand")).into()),
    ];
    if with_output {
        fields.push(("output", string().into()));
    }
    object(&fields)
}

fn data_schema(data: Data) -> Option<Schema> {
    let count = || -> Schema { ObjectBuilder::new().schema_type(Type::Integer).minimum(Some(0)).into() };
    Some(match data {
        Data::None => return None,
        Data::Job => job_item("nexttime"),
        Data::Jobs => {
            let mut item = job_item("next_run_time");
            if let Schema::Object(o) = &mut item {
                o.properties.insert("c_time".into(), RefOr::T(string().into()));
                o.required.push("c_time".into());
            }
            object(&[
                ("total", count()),
                ("list", ArrayBuilder::new().items(ArrayItems::RefOrSchema(Box::new(RefOr::T(item)))).into()),
            ])
        }
        Data::History => {
            let row = object(&[
                ("cmd_cost", ObjectBuilder::new().schema_type(Type::Number).description(Some("seconds")).into()),
                ("job_name", string().into()),
                ("job_id", string().into()),
                ("cmd_output", string().into()),
                ("c_time", string().into()),
                ("cmd", string().into()),
                ("id", ObjectBuilder::new().schema_type(Type::Integer).into()),
                ("scheduler_name", string().description(Some("host:port:pid of the node that ran it")).into()),
                ("cmd_is_success", ObjectBuilder::new().schema_type(Type::Boolean).into()),
            ]);
            // Extension: the run's identity and end (null on rows written before runs had them).
            let mut row = row;
            if let Schema::Object(o) = &mut row {
                for (name, schema) in [
                    ("run_id", nullable(Type::String)),
                    ("fire_time", nullable(Type::String)),
                    ("started", nullable(Type::String)),
                    ("ended", nullable(Type::String)),
                    ("attempt", nullable(Type::Integer)),
                    ("trigger", nullable(Type::String)),
                    ("outcome", nullable(Type::String)),
                ] {
                    o.properties.insert(name.into(), RefOr::T(schema.into()));
                }
            }
            object(&[
                ("total", count()),
                ("list", ArrayBuilder::new().items(ArrayItems::RefOrSchema(Box::new(RefOr::T(row)))).into()),
            ])
        }
        Data::Cleared => object(&[("deleted", count())]),
        Data::Added => object(&[
            ("count", count()),
            ("added", ArrayBuilder::new().items(ArrayItems::RefOrSchema(Box::new(RefOr::T(string().into())))).into()),
            (
                "refused",
                ArrayBuilder::new()
                    .items(ArrayItems::RefOrSchema(Box::new(RefOr::T(object(&[
                        ("index", count()),
                        ("job_id", nullable(Type::String).into()),
                        ("stat", string().enum_values(Some(["ERR", "ERR_BAD_PARAMS"])).into()),
                        ("reason", string().into()),
                    ])))))
                    .into(),
            ),
        ]),
        Data::FireTimes => object(&[
            ("rule", string().into()),
            ("list", ArrayBuilder::new().items(ArrayItems::RefOrSchema(Box::new(RefOr::T(string().into())))).into()),
        ]),
        Data::Plugins => {
            let plugin = object(&[
                ("file", string().into()),
                ("status", string().enum_values(Some(["loaded", "failed"])).into()),
                ("name", nullable(Type::String).into()),
                ("version", nullable(Type::String).into()),
                (
                    "prefixes",
                    ArrayBuilder::new().items(ArrayItems::RefOrSchema(Box::new(RefOr::T(string().into())))).into(),
                ),
                ("contract", nullable(Type::String).into()),
                ("grants", nullable(Type::String).into()),
                ("error", nullable(Type::String).into()),
            ]);
            object(&[("list", ArrayBuilder::new().items(ArrayItems::RefOrSchema(Box::new(RefOr::T(plugin)))).into())])
        }
        Data::Nodes => {
            let node = object(&[
                ("name", string().into()),
                ("version", string().into()),
                ("state", string().enum_values(Some(["up", "stopped", "silent"])).into()),
                ("this", ObjectBuilder::new().schema_type(Type::Boolean).into()),
                ("started", string().into()),
                ("seen", string().into()),
                ("stopped", nullable(Type::String).into()),
            ]);
            object(&[
                ("total", count()),
                ("list", ArrayBuilder::new().items(ArrayItems::RefOrSchema(Box::new(RefOr::T(node)))).into()),
            ])
        }
        Data::Calendars => {
            let calendar = object(&[
                ("name", string().into()),
                ("status", string().enum_values(Some(["loaded", "failed"])).into()),
                ("description", nullable(Type::String).into()),
                ("source", nullable(Type::String).into()),
                ("file", nullable(Type::String).into()),
                (
                    "years",
                    ArrayBuilder::new()
                        .items(ArrayItems::RefOrSchema(Box::new(RefOr::T(
                            ObjectBuilder::new().schema_type(Type::Integer).into(),
                        ))))
                        .into(),
                ),
                ("error", nullable(Type::String).description(Some("why the file on disk is not in force")).into()),
            ]);
            object(&[
                ("total", count()),
                ("list", ArrayBuilder::new().items(ArrayItems::RefOrSchema(Box::new(RefOr::T(calendar)))).into()),
            ])
        }
        Data::CalendarDays => {
            let dates = || -> Schema {
                ArrayBuilder::new().items(ArrayItems::RefOrSchema(Box::new(RefOr::T(string().into())))).into()
            };
            object(&[
                ("calendar", string().into()),
                ("month", string().into()),
                (
                    "covered",
                    ObjectBuilder::new()
                        .schema_type(Type::Boolean)
                        .description(Some("false: the calendar has no data for the year; Monday to Friday shown"))
                        .into(),
                ),
                ("workdays", dates()),
                ("rest_days", dates()),
            ])
        }
        Data::RunStarted => {
            object(&[("run_id", string().into()), ("job_id", string().into()), ("node", string().into())])
        }
        Data::Runs => object(&[
            ("total", count()),
            ("list", ArrayBuilder::new().items(ArrayItems::RefOrSchema(Box::new(RefOr::T(run_item(false))))).into()),
        ]),
        Data::Run => run_item(true),
        Data::Audit => object(&[
            ("total", count()),
            (
                "list",
                ArrayBuilder::new()
                    .items(ArrayItems::RefOrSchema(Box::new(RefOr::T(object(&[
                        ("id", count()),
                        ("at", string().into()),
                        ("node", string().into()),
                        ("caller", string().into()),
                        ("peer", string().into()),
                        ("action", string().into()),
                        ("job_id", nullable(Type::String).into()),
                        ("run_id", nullable(Type::String).into()),
                        ("params", ObjectBuilder::new().schema_type(Type::Object).into()),
                        (
                            "before",
                            nullable(Type::Object)
                                .description(Some("fields of the job that changed, before (null: not a job's change)"))
                                .into(),
                        ),
                        ("after", nullable(Type::Object).description(Some("the same fields, after")).into()),
                    ])))))
                    .into(),
            ),
        ]),
        Data::Versions => object(&[
            ("job_id", string().into()),
            ("total", count()),
            (
                "list",
                ArrayBuilder::new()
                    .items(ArrayItems::RefOrSchema(Box::new(RefOr::T(object(&[
                        ("version", count()),
                        ("at", string().into()),
                        ("caller", string().into()),
                        ("current", ObjectBuilder::new().schema_type(Type::Boolean).into()),
                        ("definition", ObjectBuilder::new().schema_type(Type::Object).into()),
                    ])))))
                    .into(),
            ),
        ]),
        Data::Definitions => object(&[
            ("total", count()),
            (
                "list",
                ArrayBuilder::new()
                    .items(ArrayItems::RefOrSchema(Box::new(RefOr::T(
                        ObjectBuilder::new()
                            .schema_type(Type::Object)
                            .description(Some("a job's job_add parameters"))
                            .into(),
                    ))))
                    .into(),
            ),
        ]),
        Data::Stats => {
            let bucket = || {
                ArrayBuilder::new()
                    .items(ArrayItems::RefOrSchema(Box::new(RefOr::T(object(&[
                        ("start", string().into()),
                        ("epoch", count()),
                        (
                            "runs",
                            ObjectBuilder::new().schema_type(Type::Object).description(Some("runs by outcome")).into(),
                        ),
                        ("late_p50_ms", nullable(Type::Number).into()),
                        ("late_p99_ms", nullable(Type::Number).into()),
                    ])))))
                    .into()
            };
            let jobs = || {
                ArrayBuilder::new()
                    .items(ArrayItems::RefOrSchema(Box::new(RefOr::T(object(&[
                        ("job_id", string().into()),
                        ("runs", count()),
                        ("failures", count()),
                        ("cost_avg", ObjectBuilder::new().schema_type(Type::Number).into()),
                        ("cost_max", ObjectBuilder::new().schema_type(Type::Number).into()),
                    ])))))
                    .into()
            };
            object(&[("minutes", bucket()), ("hours", bucket()), ("slowest", jobs()), ("failing", jobs())])
        }
        Data::Strip => object(&[
            ("job_id", string().into()),
            ("total", count()),
            (
                "list",
                ArrayBuilder::new()
                    .items(ArrayItems::RefOrSchema(Box::new(RefOr::T(object(&[
                        ("run_id", nullable(Type::String).into()),
                        ("outcome", string().into()),
                        ("trigger", nullable(Type::String).into()),
                        ("cost", ObjectBuilder::new().schema_type(Type::Number).into()),
                        ("ended", string().into()),
                        ("fire_time", nullable(Type::String).into()),
                    ])))))
                    .into(),
            ),
        ]),
        Data::Alerts => object(&[
            ("total", count()),
            (
                "list",
                ArrayBuilder::new()
                    .items(ArrayItems::RefOrSchema(Box::new(RefOr::T(object(&[
                        ("id", count()),
                        ("job_id", string().into()),
                        ("job_name", string().into()),
                        ("kind", string().enum_values(Some(crate::model::AlertKind::NAMES)).into()),
                        ("target", string().into()),
                        ("state", string().enum_values(Some(["pending", "sent", "failed"])).into()),
                        ("attempts", count()),
                        ("created", string().into()),
                        ("sent", nullable(Type::String).into()),
                        ("answer", nullable(Type::String).into()),
                        ("suppressed", count()),
                        ("suppressed_before", count()),
                        ("fire_time", nullable(Type::String).into()),
                        ("run_id", nullable(Type::String).into()),
                        ("node", string().into()),
                        ("outcome", nullable(Type::String).into()),
                        ("text", string().description(Some("the message as people read it")).into()),
                    ])))))
                    .into(),
            ),
        ]),
        Data::Backfill => object(&[
            ("job_id", string().into()),
            ("count", count()),
            ("dry_run", ObjectBuilder::new().schema_type(Type::Boolean).into()),
            (
                "list",
                ArrayBuilder::new()
                    .items(ArrayItems::RefOrSchema(Box::new(RefOr::T(object(&[
                        ("fire_time", string().into()),
                        ("run_id", nullable(Type::String).into()),
                    ])))))
                    .into(),
            ),
        ]),
        Data::RunOutput => object(&[
            ("run_id", string().into()),
            ("state", string().enum_values(Some(["waiting", "running", "ended"])).into()),
            ("outcome", nullable(Type::String).into()),
            ("offset", count()),
            ("next_offset", count()),
            ("output", string().description(Some("the bytes from offset on, as UTF-8 (cut on a character)")).into()),
        ]),
        Data::RunKill => object(&[
            ("run_id", string().into()),
            ("node", string().into()),
            ("state", string().into()),
            ("kill_requested", ObjectBuilder::new().schema_type(Type::Boolean).into()),
        ]),
        Data::Status => object(&[
            ("wait_seconds", nullable(Type::Number).into()),
            ("next_wakeup_time", nullable(Type::String).into()),
            ("check_time", nullable(Type::String).into()),
        ]),
    })
}

/// RuQi's envelope around `data`.
fn envelope(data: Data) -> Schema {
    let stat = string()
        .enum_values(Some(["OK", "ERR", "ERR_BAD_PARAMS", "ERR_SERVER_EXCEPTION"]))
        .description(Some("OK, or why not (the reason is in the x-reason header)"));
    let mut o = ObjectBuilder::new().schema_type(Type::Object).property("stat", stat).required("stat");
    if let Some(d) = data_schema(data) {
        o = o.property("data", d);
    }
    o.into()
}

fn operation(spec: &Spec, name: &str, method: HttpMethod) -> utoipa::openapi::path::Operation {
    let reason = HeaderBuilder::new()
        .schema(string())
        .description(Some("why a request was refused, one line of ASCII (with stat ERR…)"))
        .build();
    let ok = ResponseBuilder::new()
        .description("RuQi's envelope: HTTP 200 whatever the outcome, `stat` says it")
        .header("x-reason", reason)
        .content("application/json", ContentBuilder::new().schema(Some(envelope(spec.data))).build());
    let ok = if matches!(spec.data, Data::Jobs | Data::History) {
        ok.content("text/plain", ContentBuilder::new().schema(Some(string())).build())
    } else {
        ok
    };
    let denied = |what: &str| {
        ResponseBuilder::new().description(what).content(
            "application/json",
            ContentBuilder::new().schema(Some(object(&[("stat", string().into())]))).build(),
        )
    };
    let mut op = OperationBuilder::new()
        .operation_id(Some(format!("{name}_{}", if method == HttpMethod::Get { "get" } else { "post" })))
        .summary(Some(spec.summary))
        .tag(if spec.names[0] == name { "ruqi" } else { "ruqi 1.x aliases" })
        .responses(
            ResponsesBuilder::new()
                .response("200", ok)
                .response("401", denied("no valid bearer token (when tokens are configured)"))
                .response("403", denied("a read-only token on a route that changes something")),
        );
    let all = spec.required.iter().map(|p| (p, true)).chain(spec.optional.iter().map(|p| (p, false)));
    for (p, required) in all.clone() {
        // In a POST the body may carry any parameter, so none is required in its query.
        let required = required && method == HttpMethod::Get;
        op = op.parameter(
            ParameterBuilder::new()
                .name(p.name)
                .parameter_in(ParameterIn::Query)
                .required(if required { Required::True } else { Required::False })
                .description(Some(p.doc))
                .schema(Some(param_schema(p))),
        );
    }
    if method == HttpMethod::Post {
        let mut body = ObjectBuilder::new()
            .schema_type(Type::Object)
            .description(Some("the parameters as a JSON object; its values win over the query's"));
        for (p, _) in all {
            let schema = match p.kind {
                Kind::Text => nullable(Type::String).description(Some(p.doc)).into(),
                _ => param_schema(p),
            };
            body = body.property(p.name, schema);
        }
        op = op.request_body(Some(
            RequestBodyBuilder::new()
                .content("application/json", ContentBuilder::new().schema(Some(body)).build())
                .build(),
        ));
    }
    op.build()
}

/// The document.
pub fn document() -> OpenApi {
    let mut paths = PathsBuilder::new();
    for spec in &ROUTES {
        for name in spec.names {
            let item = PathItemBuilder::new()
                .operation(HttpMethod::Get, operation(spec, name, HttpMethod::Get))
                .operation(HttpMethod::Post, operation(spec, name, HttpMethod::Post))
                .build();
            paths = paths.path(format!("/ruqi/{name}"), item);
        }
    }
    let bearer = SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer));
    OpenApiBuilder::new()
        .info(InfoBuilder::new().title("RuQi (如期)").version(env!("CARGO_PKG_VERSION")).description(Some(
            "The HTTP API of RuQi, the job scheduler: the seed's routes and RuQi 1.x's aliases. Every \
                     answer is HTTP 200 with `stat`; a refusal's reason is in the `x-reason` header. With tokens \
                     configured, send `Authorization: Bearer <token>`.",
        )))
        .paths(paths)
        .components(Some(ComponentsBuilder::new().security_scheme("bearer", bearer).build()))
        .security(Some([SecurityRequirement::new("bearer", Vec::<String>::new()), SecurityRequirement::default()]))
        .build()
}

/// The document as JSON text.
pub fn json() -> String {
    document().to_json().unwrap_or_else(|e| {
        tracing::error!(error = %e, "cannot write the OpenAPI document");
        "{}".into()
    })
}

/// The `GET /openapi.json` answer (no token needed: it describes, it reveals nothing).
pub fn response() -> axum::http::Response<axum::body::Body> {
    let mut resp = axum::http::Response::new(axum::body::Body::from(json()));
    resp.headers_mut()
        .insert(axum::http::header::CONTENT_TYPE, axum::http::HeaderValue::from_static("application/json"));
    resp
}
