//! The deployment files in `deploy/`: the plain Kubernetes manifests against the
//! Kubernetes schemas (kubernetes-validate, schemas bundled) and against the chart's
//! values, every command line they start strait with against the binary's own `--help`,
//! the systemd units through `systemd-analyze`, and the chart's config through
//! `strait check`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

use crate::harness::*;

/// The Kubernetes release whose schemas the manifests must satisfy.
const KUBERNETES_VERSION: &str = "1.34.0";

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn deploy(path: &str) -> PathBuf {
    repo().join("deploy").join(path)
}

fn manifests() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(deploy("kubernetes"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no manifests in deploy/kubernetes");
    files
}

/// Every YAML document of a file, as JSON.
fn yaml(path: &Path) -> Vec<Value> {
    let out = Command::new(python())
        .args([
            "-c",
            "import json, sys, yaml\n\
             print(json.dumps([d for d in yaml.safe_load_all(open(sys.argv[1])) if d is not None]))",
        ])
        .arg(path)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}: {}", path.display(), text(&out));
    match serde_json::from_slice(&out.stdout).unwrap() {
        Value::Array(docs) => docs,
        other => panic!("{}: {other}", path.display()),
    }
}

/// The one object of `kind` among the plain manifests.
fn manifest(kind: &str) -> Value {
    let found: Vec<Value> = manifests()
        .iter()
        .flat_map(|f| yaml(f))
        .filter(|d| d["kind"] == kind)
        .collect();
    assert_eq!(found.len(), 1, "{kind} objects in deploy/kubernetes: {found:?}");
    found.into_iter().next().unwrap()
}

fn values() -> Value {
    yaml(&deploy("helm/strait/values.yaml")).remove(0)
}

fn strait(args: &[&str], env: &[(String, String)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_strait"))
        .args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .unwrap()
}

/// Panics unless `args` starts with one of strait's subcommands and every `--option` in
/// it is one that subcommand's `--help` lists.
fn assert_real_command_line(args: &[String], whence: &str) {
    let help = text(&strait(&["--help"], &[]));
    let commands = help
        .split("Commands:")
        .nth(1)
        .expect("a Commands section in strait --help");
    let sub = args.first().unwrap_or_else(|| panic!("{whence}: no subcommand"));
    assert!(
        commands.lines().any(|l| l.split_whitespace().next() == Some(sub)),
        "{whence}: `{sub}` is not a strait subcommand:\n{help}"
    );
    let sub_help = strait(&[sub, "--help"], &[]);
    assert!(sub_help.status.success(), "strait {sub} --help: {}", text(&sub_help));
    let sub_help = text(&sub_help);
    for option in args.iter().filter(|a| a.starts_with("--")) {
        let option = option.split('=').next().unwrap();
        assert!(
            sub_help.split_whitespace().any(|w| w.trim_end_matches(',') == option),
            "{whence}: strait {sub} has no option {option}:\n{sub_help}"
        );
    }
}

#[test]
fn the_plain_kubernetes_manifests_validate_against_the_kubernetes_schemas() {
    let files = manifests();
    let out = Command::new(python())
        .args(["-m", "kubernetes_validate", "--strict", "-k", KUBERNETES_VERSION])
        .args(&files)
        .output()
        .unwrap();
    let said = text(&out);
    assert!(
        out.status.success(),
        "kubernetes-validate refused deploy/kubernetes:\n{said}"
    );
    let documents: usize = files.iter().map(|f| yaml(f).len()).sum();
    assert_eq!(
        said.matches(" passed for resource ").count(),
        documents,
        "not every object was validated:\n{said}"
    );
}

#[test]
fn the_plain_manifests_are_what_the_chart_renders_from_its_default_values() {
    let values = values();
    let config_map = manifest("ConfigMap");
    let toml = config_map["data"]["strait.toml"].as_str().unwrap();
    assert_eq!(
        toml,
        values["config"].as_str().unwrap(),
        "ConfigMap and values.yaml disagree"
    );

    let deployment = manifest("Deployment");
    let pod = &deployment["spec"]["template"];
    let container = &pod["spec"]["containers"][0];
    let image = format!(
        "{}:{}",
        values["image"]["repository"].as_str().unwrap(),
        values["image"]["tag"].as_str().unwrap()
    );
    assert_eq!(container["image"], image.as_str());
    assert_eq!(container["imagePullPolicy"], values["image"]["pullPolicy"]);
    assert_eq!(deployment["spec"]["replicas"], values["replicas"]);
    assert_eq!(container["resources"], values["resources"]);
    assert_eq!(container["securityContext"], values["securityContext"]);
    assert_eq!(pod["spec"]["securityContext"], values["podSecurityContext"]);
    assert_eq!(
        pod["spec"]["terminationGracePeriodSeconds"],
        values["terminationGracePeriodSeconds"]
    );

    // The environment: metrics first, then the plain values, then the Secrets.
    let port = values["metrics"]["port"].as_u64().unwrap();
    let mut env = vec![serde_json::json!({"name": "STRAIT_METRICS", "value": format!("0.0.0.0:{port}")})];
    env.extend(values["env"].as_array().unwrap().iter().cloned());
    for s in values["secretEnv"].as_array().unwrap() {
        env.push(serde_json::json!({
            "name": s["name"],
            "valueFrom": {"secretKeyRef": {"name": s["secretName"], "key": s["key"]}},
        }));
    }
    assert_eq!(container["env"], Value::Array(env));

    // Probes and scraping on the metrics port.
    let metrics = &container["ports"][0];
    assert_eq!(metrics["name"], "metrics");
    assert_eq!(metrics["containerPort"].as_u64(), Some(port));
    assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz");
    for probe in ["livenessProbe", "readinessProbe"] {
        assert_eq!(container[probe]["httpGet"]["port"], "metrics");
    }
    let annotations = &pod["metadata"]["annotations"];
    assert_eq!(annotations["prometheus.io/scrape"], "true");
    assert_eq!(annotations["prometheus.io/port"], port.to_string().as_str());
    assert_eq!(annotations["prometheus.io/path"], "/metrics");

    // Helm's `sha256sum` of the config, so that a changed config rolls the pod.
    let out = Command::new(python())
        .args([
            "-c",
            "import hashlib, sys; print(hashlib.sha256(sys.stdin.buffer.read()).hexdigest())",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(toml.as_bytes())?;
            child.wait_with_output()
        })
        .unwrap();
    let sha = String::from_utf8(out.stdout).unwrap();
    assert_eq!(annotations["checksum/config"], sha.trim());

    // The config is mounted where the command line looks for it.
    let mount = &container["volumeMounts"][0];
    assert_eq!(mount["mountPath"], "/etc/strait/strait.toml");
    assert_eq!(
        pod["spec"]["volumes"][0]["configMap"]["name"],
        config_map["metadata"]["name"]
    );

    // With no proxy ports in the values, the chart makes no Service.
    assert!(values["service"]["ports"].as_array().unwrap().is_empty());
    assert!(manifests().iter().flat_map(|f| yaml(f)).all(|d| d["kind"] != "Service"));
}

#[test]
fn the_charts_default_config_passes_strait_check_with_the_secrets_the_pod_gets() {
    let deployment = manifest("Deployment");
    let env: Vec<(String, String)> = deployment["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            // Plain values as given; those from Secrets as a stand-in.
            let value = e["value"].as_str().unwrap_or("secret-from-the-pod");
            (e["name"].as_str().unwrap().to_owned(), value.to_owned())
        })
        .collect();
    let from_values = write_config("deploy-values", values()["config"].as_str().unwrap());
    let from_config_map = write_config(
        "deploy-configmap",
        manifest("ConfigMap")["data"]["strait.toml"].as_str().unwrap(),
    );
    for path in [&from_values, &from_config_map] {
        let out = strait(&["check", "--config", path.to_str().unwrap()], &env);
        assert!(out.status.success(), "{}:\n{}", path.display(), text(&out));
        let plan = text(&out);
        assert!(plan.contains("mirror sea-to-hk: sea -> hk"), "{plan}");
        assert!(!plan.contains("secret-from-the-pod"), "a secret leaked: {plan}");
        // Without the pod's environment the ${env:...} secrets are missing.
        let out = strait(&["check", "--config", path.to_str().unwrap()], &[]);
        assert!(!out.status.success(), "checked without its secrets: {}", text(&out));
        assert!(text(&out).contains("is not set"), "{}", text(&out));
    }
}

/// The unit files, each with the name systemd would load it under.
fn units() -> Vec<(String, String)> {
    ["strait.service", "strait@.service"]
        .iter()
        .map(|name| {
            let text = String::from_utf8(read(deploy("systemd").join(name))).unwrap();
            (name.replace("@.", "@example."), text)
        })
        .collect()
}

fn exec_start(unit: &str) -> Vec<String> {
    let lines: Vec<&str> = unit.lines().filter_map(|l| l.strip_prefix("ExecStart=")).collect();
    assert_eq!(lines.len(), 1, "one ExecStart line: {lines:?}");
    lines[0].split_whitespace().map(str::to_owned).collect()
}

#[test]
fn every_command_line_in_deploy_runs_a_real_strait_subcommand() {
    for (name, unit) in units() {
        let exec = exec_start(&unit);
        assert_eq!(exec[0], "/usr/local/bin/strait", "{name}");
        assert_real_command_line(&exec[1..], &name);
        assert!(
            unit.contains("RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX"),
            "{name}"
        );
    }
    let (_, single) = &units()[0];
    assert_eq!(exec_start(single)[1..], ["run", "--config", "/etc/strait/strait.toml"]);
    assert!(single.contains("EnvironmentFile=-/etc/default/strait\n"));
    let (_, template) = &units()[1];
    assert_eq!(exec_start(template)[1..], ["run", "--config", "/etc/strait/%i.toml"]);
    assert!(template.contains("EnvironmentFile=-/etc/default/strait-%i\n"));

    // The image: ENTRYPOINT strait, CMD its arguments.
    let dockerfile = String::from_utf8(read(deploy("container/Dockerfile"))).unwrap();
    let json_line = |key: &str| -> Vec<String> {
        let line = dockerfile
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .unwrap_or_else(|| panic!("no {key} in the Dockerfile"));
        serde_json::from_str(line.trim()).unwrap()
    };
    assert_eq!(json_line("ENTRYPOINT "), ["/usr/local/bin/strait"]);
    assert_real_command_line(&json_line("CMD "), "Dockerfile CMD");

    // The pod.
    let args: Vec<String> =
        serde_json::from_value(manifest("Deployment")["spec"]["template"]["spec"]["containers"][0]["args"].clone())
            .unwrap();
    assert_real_command_line(&args, "Deployment args");
}

#[test]
fn systemd_analyze_verifies_the_units_and_rates_them_well_sandboxed() {
    if Command::new("systemd-analyze").arg("--version").output().is_err() {
        println!("skipped: systemd-analyze is not installed");
        return;
    }
    let dir = temp_dir("systemd");
    for (name, unit) in units() {
        // systemd checks that the program exists: point it at the binary under test.
        let unit = unit.replace("/usr/local/bin/strait", env!("CARGO_BIN_EXE_strait"));
        let path = dir.join(&name);
        std::fs::write(&path, unit).unwrap();
        let out = Command::new("systemd-analyze")
            .arg("verify")
            .arg(&path)
            .output()
            .unwrap();
        let said = text(&out);
        assert!(out.status.success() && said.trim().is_empty(), "{name}:\n{said}");
        // Exposure 2.0 of 10 at most ("OK"); the units score 1.4.
        let out = Command::new("systemd-analyze")
            .args(["security", "--offline=yes", "--threshold=20"])
            .arg(&path)
            .output()
            .unwrap();
        assert!(out.status.success(), "{name} is exposed:\n{}", text(&out));
    }
}
