//! `ruqi plugin new NAME --lang rust|python|js`: a new plugin folder made from the templates in
//! `plugins/` (`template`, `template-python`, `template-js`, embedded here when `ruqi` is built),
//! serving the cmd prefix `NAME:`, with a grants file `NAME.toml` and a README saying how to build
//! and load it.
//!
//! The templates are real plugins that `make test` builds and runs, so a scaffold starts from code
//! known to work; here they are only renamed: the template's name and prefix (`echo`, `pyecho`,
//! `jsecho`) become NAME, and its header comment says where it came from.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The language of a new plugin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Lang {
    /// Rust, a member crate of the `plugins/` cargo workspace (`ruqi-plugin-sdk`).
    Rust,
    /// Python, built with componentize-py.
    Python,
    /// JavaScript, built with componentize-js.
    Js,
}

/// Why a plugin folder could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ScaffoldError {
    /// The name cannot be a plugin name.
    #[error("invalid plugin name {0:?}: use 1 to 40 lowercase letters, digits and '-', starting with a letter")]
    BadName(String),
    /// The folder exists already (nothing is overwritten).
    #[error("{0} exists already")]
    Exists(PathBuf),
    /// Writing a file failed.
    #[error("cannot write {path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

/// One file of a new plugin: its path inside the plugin folder and its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct File {
    /// Path relative to the plugin folder, `/`-separated.
    pub path: String,
    /// Contents.
    pub text: String,
}

mod templates {
    pub const RUST_CARGO: &str = include_str!("../../plugins/template/Cargo.toml");
    pub const RUST_LIB: &str = include_str!("../../plugins/template/src/lib.rs");
    pub const PY_APP: &str = include_str!("../../plugins/template-python/app.py");
    pub const PY_REQUIREMENTS: &str = include_str!("../../plugins/template-python/requirements.txt");
    pub const JS_PLUGIN: &str = include_str!("../../plugins/template-js/plugin.js");
    pub const JS_PACKAGE: &str = include_str!("../../plugins/template-js/package.json");
    pub const JS_LOCK: &str = include_str!("../../plugins/template-js/package-lock.json");
}

/// Checks a plugin name: 1 to 40 of `a-z`, `0-9`, `-`, starting with a letter, not ending with `-`.
pub fn check_name(name: &str) -> Result<(), ScaffoldError> {
    let ok = (1..=40).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && !name.ends_with('-')
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if ok { Ok(()) } else { Err(ScaffoldError::BadName(name.to_owned())) }
}

/// The files of a new plugin `name` in `lang`.
pub fn render(name: &str, lang: Lang) -> Result<Vec<File>, ScaffoldError> {
    check_name(name)?;
    let file = |path: &str, text: String| File { path: path.to_owned(), text };
    let mut files = match lang {
        Lang::Rust => vec![file("Cargo.toml", rust_cargo(name)), file("src/lib.rs", rust_lib(name))],
        Lang::Python => {
            vec![file("app.py", python_app(name)), file("requirements.txt", templates::PY_REQUIREMENTS.to_owned())]
        }
        Lang::Js => vec![
            file("plugin.js", js_plugin(name)),
            file("package.json", js_package(name)),
            file("package-lock.json", js_lock(name)),
        ],
    };
    files.push(file(&format!("{name}.toml"), grants(name, lang)));
    files.push(file("README.md", readme(name, lang)));
    Ok(files)
}

/// Writes the files of plugin `name` into a new folder `dir/name`; returns that folder.
pub fn create(dir: &Path, name: &str, lang: Lang) -> Result<PathBuf, ScaffoldError> {
    let files = render(name, lang)?;
    let root = dir.join(name);
    if root.exists() {
        return Err(ScaffoldError::Exists(root));
    }
    for f in &files {
        let path = root.join(&f.path);
        let io = |source| ScaffoldError::Io { path: path.clone(), source };
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io)?;
        }
        std::fs::write(&path, &f.text).map_err(io)?;
    }
    Ok(root)
}

/// What to do next, printed after [`create`]: how to build, install and try the plugin in `folder`.
pub fn next_steps(name: &str, lang: Lang, folder: &Path) -> String {
    let mut out = format!("created {} ({} plugin {name}, cmds {name}:TEXT)\n", folder.display(), language(lang).0);
    for f in render(name, lang).unwrap_or_default() {
        let _ = writeln!(out, "  {}", f.path);
    }
    out.push_str("next: edit it, then build and load it as its README.md says:\n");
    for line in build_steps(name, lang, folder) {
        let _ = writeln!(out, "  {line}");
    }
    out
}

/// The name of `lang` and the template a plugin in it starts from.
fn language(lang: Lang) -> (&'static str, &'static str) {
    match lang {
        Lang::Rust => ("Rust", "template"),
        Lang::Python => ("Python", "template-python"),
        Lang::Js => ("JavaScript", "template-js"),
    }
}

/// `Upper` camel case of a plugin name (`sms-gw` → `SmsGw`), for a Rust type.
fn camel(name: &str) -> String {
    name.split('-')
        .map(|w| {
            let mut c = w.chars();
            c.next().map(|f| f.to_ascii_uppercase().to_string() + c.as_str()).unwrap_or_default()
        })
        .collect()
}

/// `text` without its leading lines that start with `marker`, after `header` (each line prefixed).
fn reheader(text: &str, marker: &str, header: &[String]) -> String {
    let body: Vec<&str> = text.lines().skip_while(|l| l.starts_with(marker)).collect();
    let mut out: String = header.iter().map(|h| format!("{marker} {h}\n")).collect();
    out.push_str(&body.join("\n"));
    out.push('\n');
    out
}

fn header(name: &str, lang: &str, template: &str) -> Vec<String> {
    vec![
        format!("{name}: a RuQi executor plugin in {lang}, made by `ruqi plugin new` from plugins/{template}."),
        format!("It serves cmds `{name}:TEXT`: it refuses an empty TEXT when the job is added, and each run's"),
        "output is TEXT. Make it yours: describe() (name, prefixes), validate(), execute().".to_owned(),
    ]
}

fn rust_cargo(name: &str) -> String {
    templates::RUST_CARGO
        .replace("name = \"template\"", &format!("name = \"{name}\""))
        .lines()
        .map(|l| {
            if l.starts_with("description = ") {
                format!("description = \"A RuQi executor plugin (cmds `{name}:TEXT`)\"")
            } else {
                l.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

fn rust_lib(name: &str) -> String {
    let code = templates::RUST_LIB
        .replace("\"echo:\"", &format!("\"{name}:\""))
        .replace("PluginInfo::new(\"echo\"", &format!("PluginInfo::new(\"{name}\""))
        .replace("\"echo cmds look like", &format!("\"{name} cmds look like"))
        .replace("Echo", &camel(name));
    reheader(&code, "//!", &header(name, "Rust", "template"))
}

fn python_app(name: &str) -> String {
    let code = templates::PY_APP.replace("pyecho", name);
    // The module docstring is the first `"""…"""` block.
    let body = code.splitn(3, "\"\"\"").nth(2).unwrap_or(&code);
    let mut out = format!("\"\"\"{}\n\"\"\"", header(name, "Python", "template-python").join("\n"));
    out.push_str(body);
    out
}

fn js_plugin(name: &str) -> String {
    reheader(&templates::JS_PLUGIN.replace("jsecho", name), "//", &header(name, "JavaScript", "template-js"))
}

fn js_package(name: &str) -> String {
    templates::JS_PACKAGE
        .replace("\"name\": \"ruqi-template-js\"", &format!("\"name\": \"ruqi-plugin-{name}\""))
        .replace("template-js.wasm", &format!("{name}.wasm"))
        .lines()
        .map(|l| {
            if l.trim_start().starts_with("\"description\": ") {
                format!("  \"description\": \"A RuQi executor plugin (cmds {name}:TEXT)\",")
            } else {
                l.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

fn js_lock(name: &str) -> String {
    templates::JS_LOCK.replace("\"name\": \"ruqi-template-js\"", &format!("\"name\": \"ruqi-plugin-{name}\""))
}

fn grants(name: &str, lang: Lang) -> String {
    let memory = match lang {
        Lang::Rust => "A Rust plugin needs well under 1 MiB to start.",
        Lang::Python => "A Python plugin needs ~13 MiB to start (CPython and its heap).",
        Lang::Js => "A JavaScript plugin needs ~10 MiB to start (SpiderMonkey and its heap).",
    };
    format!(
        "# Grants of the plugin {name}: copy this file beside {name}.wasm in plugins/ (as {name}.toml).
# Nothing granted means nothing reachable; docs/plugins.md lists every key.
# hosts = [\"api.example.com\"]   # origins outgoing HTTP may reach (wasi:http, fetch)
# {memory}
memory_mb = 64
cpu_secs = 30
timeout_secs = 60

[config]
# values the plugin reads with config(\"key\"), e.g.
# token = \"...\"
"
    )
}

/// The commands that build `name` in `folder` and load it into a server's `plugins/`.
fn build_steps(name: &str, lang: Lang, folder: &Path) -> Vec<String> {
    let f = folder.display();
    match lang {
        Lang::Rust => vec![
            format!("# add \"{name}\" to `members` in plugins/Cargo.toml (the folder must be plugins/{name}), then:"),
            format!("(cd plugins && cargo build --release --target wasm32-wasip2 -p {name})"),
            format!("cp plugins/target/wasm32-wasip2/release/{}.wasm plugins/{name}.wasm", name.replace('-', "_")),
            format!("cp {f}/{name}.toml plugins/"),
        ],
        Lang::Python => vec![
            "make plugins    # installs componentize-py under target/polyglot, builds plugins/*/app.py".to_owned(),
            format!("cp target/polyglot/wasm/{name}.wasm target/polyglot/wasm/{name}.toml plugins/"),
            format!(
                "# by hand: target/polyglot/venv/bin/componentize-py -d wit -w plugin componentize -p {f} app -o {name}.wasm"
            ),
        ],
        Lang::Js => vec![
            "make plugins    # installs componentize-js under target/polyglot, builds plugins/*/plugin.js".to_owned(),
            format!("cp target/polyglot/wasm/{name}.wasm target/polyglot/wasm/{name}.toml plugins/"),
            format!(
                "# by hand: target/polyglot/js/node_modules/.bin/componentize-js {f}/plugin.js --wit wit --world-name plugin --out {name}.wasm"
            ),
        ],
    }
}

fn readme(name: &str, lang: Lang) -> String {
    let (language, template) = language(lang);
    let steps = build_steps(name, lang, Path::new(&format!("plugins/{name}"))).join("\n");
    format!(
        "# {name} — a RuQi executor plugin in {language}

Made by `ruqi plugin new {name} --lang {lang}` from `plugins/{template}` (read its README for what a
{language} plugin should know). It serves cmds `{name}:TEXT`; edit it to do your work.

## Build and load

From the repository root:

```sh
{steps}
./target/release/ruqi plugin check plugins/{name}.wasm   # prefixes, memory needed, accepted or not
curl -s localhost:8585/ruqi/job_add -d '{{\"job_trigger\":\"date\",\"job_id\":\"try-{name}\",\"job_name\":\"try\",\"cmd\":\"{name}:hello\",\"rule\":\"now\"}}'
curl -s 'localhost:8585/ruqi/job_history_list?job_id=try-{name}'
```

A running server loads, replaces or drops plugins as files come and go in `plugins/`. `{name}.toml` holds
its grants (hosts, config values, limits): nothing granted means nothing reachable.

The guide: `docs/plugins.md`. The contract: `wit/executor.wit` and `wit/README.md`.
",
        lang = match lang {
            Lang::Rust => "rust",
            Lang::Python => "python",
            Lang::Js => "js",
        }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        for good in ["sms", "sms-gw", "a1", "x"] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        for bad in ["", "Sms", "1sms", "sms-", "sms_gw", "sms:", "a/b", "..", &"x".repeat(41)] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn every_language_is_renamed_throughout() {
        for lang in [Lang::Rust, Lang::Python, Lang::Js] {
            let files = render("sms-gw", lang).unwrap();
            let paths: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
            assert!(paths.contains(&"sms-gw.toml") && paths.contains(&"README.md"), "{lang:?}: {paths:?}");
            for f in files.iter().filter(|f| f.path != "README.md") {
                for old in ["echo:", "pyecho", "jsecho", "template-js.wasm", "ruqi-template-js", "Echo"] {
                    assert!(!f.text.contains(old), "{lang:?} {}: still says {old:?}:\n{}", f.path, f.text);
                }
            }
            let code =
                &files.iter().find(|f| ["src/lib.rs", "app.py", "plugin.js"].contains(&f.path.as_str())).unwrap().text;
            assert!(code.contains("\"sms-gw:\""), "{lang:?}: the prefix\n{code}");
            assert!(code.contains("sms-gw cmds look like"), "{lang:?}: the refusal\n{code}");
            let toml: toml::Value =
                toml::from_str(&files.iter().find(|f| f.path == "sms-gw.toml").unwrap().text).unwrap();
            assert_eq!(toml["memory_mb"].as_integer(), Some(64));
        }
        let rust = render("sms-gw", Lang::Rust).unwrap();
        assert!(rust[0].text.contains("name = \"sms-gw\"") && rust[1].text.contains("struct SmsGw;"));
        assert!(rust[1].text.starts_with("//! sms-gw: a RuQi executor plugin in Rust"), "{}", rust[1].text);
        let py = render("sms-gw", Lang::Python).unwrap();
        assert!(py[0].text.starts_with("\"\"\"sms-gw: a RuQi executor plugin in Python"), "{}", py[0].text);
        assert!(py[0].text.contains("\nclass Executor(exports.Executor):"), "{}", py[0].text);
        let js = render("sms-gw", Lang::Js).unwrap();
        assert!(js[0].text.starts_with("// sms-gw: a RuQi executor plugin in JavaScript"), "{}", js[0].text);
        let package: serde_json::Value = serde_json::from_str(&js[1].text).unwrap();
        assert_eq!(package["name"], "ruqi-plugin-sms-gw");
        let lock: serde_json::Value = serde_json::from_str(&js[2].text).unwrap();
        assert_eq!(lock["packages"][""]["name"], "ruqi-plugin-sms-gw");
    }

    #[test]
    fn create_refuses_an_existing_folder() {
        let dir = tempfile::tempdir().unwrap();
        let made = create(dir.path(), "sms", Lang::Python).unwrap();
        assert!(made.join("app.py").is_file() && made.join("sms.toml").is_file());
        assert!(matches!(create(dir.path(), "sms", Lang::Js), Err(ScaffoldError::Exists(_))));
        assert!(matches!(create(dir.path(), "Bad", Lang::Js), Err(ScaffoldError::BadName(_))));
    }
}
